"""Benchmark: inference speed of PyTorch eager vs ONNX Runtime fp32 / int8, and int8's accuracy change.

Speed: EfficientNet-Lite0 with the shipped ImageNet weights (``graft.create_model("efficientnet_lite0",
num_classes=10)``) at its native 224 px: latency at batch 1 (median of ``--iters`` runs) and throughput
at batch 32, for torch eager (``inference_mode``), ONNX Runtime fp32, int8 dynamic, int8 static with
graft's default settings (calibrated on 256 animals training images, an equal share per class; uint8
weights) and int8 static with signed 7-bit weights (``Int8Options(weights="int8")``, the stem unsigned). All in one process, timed in interleaved rounds so that load from other processes falls on
every runner alike: compare ratios measured in one run.

Accuracy: a bundle trained on the animals sample (``--bundle``, or a quick head-only fit here:
``recipe="head"`` on 100 training images per class at 96 px) exported to int8 (dynamic and static);
accuracy of PyTorch and of each export (fp32, int8 dynamic, int8 static default, int8 static int8)
on the held-out test images (50 per class), and the top-1 agreement with PyTorch on those images.

Run: ``.venv/bin/python bench/bench_export.py [--bundle runs/animals/bundle] [--work /tmp/bench_export]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

SIZE = 224
TRAIN_PER_CLASS, TEST_PER_CLASS = 100, 50
FIT_SIZE = 96


def prepare_data(work: Path) -> Path:
    """animals sample -> work/data with train/ and test/ subsets (symlinks)."""
    from graft.data import sample_dataset

    full = sample_dataset("animals", work / "animals")
    data = work / "data"
    if (data / ".done").exists():
        return data
    for split, per in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for cls in sorted(p.name for p in (full / split).iterdir() if p.is_dir()):
            dest = data / split / cls
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted((full / split / cls).iterdir())[:per]:
                if not (dest / f.name).exists():
                    (dest / f.name).symlink_to(f.resolve())
    (data / ".done").write_text("ok")
    return data


def time_runners(runners: dict, batch: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median seconds per call of each runner, measured in interleaved rounds (after one warm-up call
    each), so that load from other processes falls on all runners alike."""
    for run in runners.values():
        run(batch)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(batch)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def speed(work: Path, data: Path, iters: int) -> dict:
    from graft.bundle import save_bundle
    from graft.data import resolve_data_config
    from graft.export import Int8Options, export_model
    from graft.export.runtime import OnnxModel
    from graft.models import create_model

    model = create_model("efficientnet_lite0", num_classes=10).eval()
    classes = [f"c{i}" for i in range(10)]
    bundle = save_bundle(
        work / "lite0", model, classes, resolve_data_config(model, image_size=SIZE)
    )
    runners = {"torch eager": _torch_runner(model)}
    exports = {}
    for name, kwargs in {
        "onnxruntime fp32": {},
        "onnxruntime int8 dynamic": {"quantize": "int8-dynamic"},
        "onnxruntime int8 static": {"quantize": "int8-static", "calibration": data},
        "onnxruntime int8 static int8w": {
            "quantize": "int8-static",
            "calibration": data,
            "int8": Int8Options(weights="int8"),
        },
    }.items():
        result = export_model(bundle, out=work / name.replace(" ", "_"), **kwargs)
        exports[name] = {
            "int8": result.int8.to_dict() if result.int8 else None,
            "parity": result.parity,
            "size_mb": result.size_bytes / 1e6,
            "export_s": result.seconds,
        }
        runners[name] = OnnxModel(result.path / "model.onnx")
    latency = time_runners(runners, torch.randn(1, 3, SIZE, SIZE), iters)
    batch_s = time_runners(runners, torch.randn(32, 3, SIZE, SIZE), max(3, iters // 5))
    rows = {}
    for name in runners:
        rows[name] = {
            "latency_ms_b1": latency[name] * 1e3,
            "throughput_img_s_b32": 32 / batch_s[name],
            **exports.get(name, {}),
        }
        print(
            f"  {name:<30} batch 1: {latency[name] * 1e3:7.1f} ms   batch 32: {32 / batch_s[name]:7.1f} img/s"
        )
    return rows


def _torch_runner(model: torch.nn.Module):
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return run


def trained_bundle(work: Path, data: Path, given: str | None) -> tuple[Path, dict]:
    if given:
        return Path(given), {"source": given}
    import shutil

    from graft.train import fit

    out = work / "run_head"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = fit(str(data), model="efficientnet_lite0", recipe="head", epochs=3, image_size=FIT_SIZE,
                 val_split=0.0, out=str(out), progress=False)  # fmt: skip
    info = {
        "source": "head-only fit here",
        "fit_s": time.perf_counter() - start,
        "metrics": result.metrics,
    }
    return result.bundle, info


def accuracy(work: Path, data: Path, bundle: Path) -> dict:
    from graft.export import Int8Options, export_model

    rows = {}
    variants = {
        "fp32": {},
        "int8-dynamic": {"quantize": "int8-dynamic"},
        "int8-static": {"quantize": "int8-static", "calibration": data},
        "int8-static-int8w": {
            "quantize": "int8-static",
            "calibration": data,
            "int8": Int8Options(weights="int8"),
        },
    }
    for name, kwargs in variants.items():
        result = export_model(bundle, data=data, out=work / f"trained_{name}", **kwargs)
        rows[name] = {
            **result.accuracy,
            "top1_agreement_test": _agreement(bundle, result.path, data),
            "int8": result.int8.to_dict() if result.int8 else None,
        }
        a = result.accuracy
        print(
            f"  {name:<18} accuracy {a['pytorch']:.4f} -> {a['exported']:.4f} ({a['change'] * 100:+.2f} points), "
            f"top-1 agreement with PyTorch {rows[name]['top1_agreement_test']:.1%}",
            flush=True,
        )
    return rows


def _agreement(bundle: Path, exported: Path, data: Path) -> float:
    """Share of the test images on which the export predicts PyTorch's top-1 class."""
    from graft.inference import predict

    files = sorted(str(p) for p in (data / "test").rglob("*.png"))
    ours, ref = predict(exported, files, top_k=1), predict(bundle, files, top_k=1)
    return sum(a["label"] == b["label"] for a, b in zip(ours, ref, strict=True)) / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle", help="a bundle trained on the animals sample (default: quick head-only fit)"
    )
    parser.add_argument("--work", default="/tmp/bench_export")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--out", default="bench/out/export.json")
    parser.add_argument(
        "--parts", default="speed,accuracy", help="comma-separated: speed, accuracy"
    )
    args = parser.parse_args()
    from graft.io import read_json, write_json
    from graft.runtime import tune_allocator

    tune_allocator()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = prepare_data(work)
    report = read_json(args.out) if Path(args.out).exists() else {}
    parts = args.parts.split(",")
    if "speed" in parts:
        print(
            f"speed: EfficientNet-Lite0, {SIZE} px, torch threads {torch.get_num_threads()}",
            flush=True,
        )
        report.update(
            size=SIZE, torch_threads=torch.get_num_threads(), speed=speed(work, data, args.iters)
        )
        write_json(args.out, report)
    if "accuracy" in parts:
        bundle, info = trained_bundle(work, data, args.bundle)
        print(f"accuracy on {data}/test ({info['source']}):", flush=True)
        report.update(trained=info, accuracy=accuracy(work, data, bundle))
        write_json(args.out, report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
