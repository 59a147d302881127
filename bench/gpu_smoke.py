"""End-to-end GPU check of graft's commands through the Python API (run where CUDA exists).

What the CPU test suite cannot prove: every command that runs a model also runs on a CUDA device
with the same results. On a generated 3-class folder (tests/imagegen.py), with a timm
``efficientnet_lite0`` at random init (no weights needed), 64 px:

- ``graft.fit`` recipe auto, bf16-mixed + channels-last on the GPU: test accuracy above chance;
- the same fit with LoRA adapters (``peft``, when installed): trainable share and accuracy;
- ``graft.predict`` on the GPU equals ``graft.predict`` on the CPU (same top-1, probabilities
  within 1e-3: bf16 is not used at prediction);
- ``graft.extract`` on the GPU equals the CPU rows within 1% of the features' scale (cuDNN's
  TF32 convolutions round at about 1e-3);
- ``graft.ensemble`` of the two bundles on the GPU predicts like its members' weighted average.

Usage: ``python bench/gpu_smoke.py [OUT_DIR]``; writes ``gpu_smoke.json`` there; exits 1 when a check
fails, 2 when CUDA is missing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imagegen import make_image_folder  # noqa: E402

import graft  # noqa: E402

# GRAFT_SMOKE_ACCELERATOR=cpu rehearses the script where there is no GPU (fp32, no CUDA check)
ACCEL = os.environ.get("GRAFT_SMOKE_ACCELERATOR", "gpu")
FIT = dict(model="efficientnet_lite0", weights="none", image_size=64, epochs=4, batch_size=32,
           workers=2, progress=False, report=False, seed=0)  # fmt: skip


def _data(root: Path) -> Path:
    for split, n, seed in (("train", 40, 0), ("val", 10, 1), ("test", 20, 2)):
        make_image_folder(root / split, per_class=n, size=64, seed=seed)
    return root


def _fit(data: Path, out: Path, **extra) -> tuple[graft.FitResult, float]:
    start = time.perf_counter()
    precision = "bf16-mixed" if ACCEL == "gpu" else "32"
    result = graft.fit(str(data), out=str(out), accelerator=ACCEL, devices=1, precision=precision,
                       channels_last=True, **FIT, **extra)  # fmt: skip
    return result, time.perf_counter() - start


def _same_predictions(bundle: Path, images: Path) -> dict:
    gpu = graft.predict(bundle, images, top_k=3, accelerator=ACCEL)
    cpu = graft.predict(bundle, images, top_k=3, accelerator="cpu")
    same = [g["label"] == c["label"] for g, c in zip(gpu, cpu, strict=True)]
    gap = max(abs(g["prob"] - c["prob"]) for g, c in zip(gpu, cpu, strict=True))
    return {"images": len(gpu), "top1_equal": all(same), "max_prob_diff": gap}


def main(out_dir: Path) -> int:
    if ACCEL == "gpu" and not torch.cuda.is_available():
        print("gpu_smoke: CUDA is not available on this machine", file=sys.stderr)
        return 2
    report: dict = {
        "device": torch.cuda.get_device_name(0) if ACCEL == "gpu" else "cpu",
        "torch": torch.__version__,
    }
    checks: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = _data(root / "data")
        plain, seconds = _fit(data, root / "fit")
        report["fit"] = {"test_acc": plain.metrics.get("test_acc"), "seconds": round(seconds, 1)}
        checks["fit above chance"] = plain.metrics.get("test_acc", 0) > 0.6
        report["predict"] = _same_predictions(plain.bundle, data / "test")
        checks["predict gpu == cpu (top-1)"] = report["predict"]["top1_equal"]
        torch.manual_seed(0)  # weights "none": the same random init for both devices
        feats_gpu = graft.extract(str(data / "test"), model="efficientnet_lite0", weights="none",
                                  image_size=64, accelerator=ACCEL, devices=1, progress=False)  # fmt: skip
        torch.manual_seed(0)
        feats_cpu = graft.extract(str(data / "test"), model="efficientnet_lite0", weights="none",
                                  image_size=64, accelerator="cpu", devices=1, progress=False)  # fmt: skip
        cpu_rows = np.asarray(feats_cpu.features)
        gap = float(np.abs(np.asarray(feats_gpu.features) - cpu_rows).max())
        report["extract_max_abs_diff"] = gap
        report["extract_max_rel_diff"] = gap / float(np.abs(cpu_rows).max())
        # cuDNN convolutions use TF32 by default (10-bit mantissa): equal to ~1e-3 of the scale
        checks["extract gpu == cpu (1% of the feature scale)"] = (
            report["extract_max_rel_diff"] < 1e-2
        )
        bundles = [plain.bundle]
        try:
            import peft  # noqa: F401

            lora, seconds = _fit(data, root / "lora", peft="lora", peft_rank=4)
            report["lora"] = {"test_acc": lora.metrics.get("test_acc"), "seconds": round(seconds, 1),
                              "trainable_fraction": lora.metrics.get("trainable_fraction")}  # fmt: skip
            checks["lora above chance"] = lora.metrics.get("test_acc", 0) > 0.6
            bundles.append(lora.bundle)
        except ImportError:
            report["lora"] = "peft not installed"
        if len(bundles) == 2:
            ens = graft.ensemble(bundles, data=str(data), out=str(root / "ens"), accelerator=ACCEL)
            report["ensemble"] = {"weights": list(ens.weights), "selection": ens.selection}
            checks["ensemble predicts on gpu"] = len(graft.predict(ens.path, data / "test",
                                                                   accelerator=ACCEL)) == 60  # fmt: skip
    report["checks"] = checks
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_smoke.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-out/gpu_smoke")))
