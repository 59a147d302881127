"""Bench: a CNN alone, a ViT alone and CNN+ViT hybrids (each fusion) on the animals sample.

Every model gets the same budget through ``graft.train.fit``: recipe ``full`` (all parameters train,
learning rates spread from head to stem), the same epochs, batch size, seed, augmentation and data.
Reported: test accuracy, parameters, latency (batch 1, median) and throughput (batch 32) on this CPU.

- CNN: ``efficientnet_lite0`` with its shipped ImageNet weights, at ``--cnn-size`` px.
- ViT: ``vit_tiny_patch16_224`` randomly initialised (no ViT weights install offline) at ``--vit-size``
  px with ``--vit-patch`` px patches and ``--vit-depth`` blocks (default 32 px, 8 px patches: 16
  tokens, near the images' 28 px; 4 blocks to fit the CPU budget).
- Hybrids: both branches, each fed its own size and normalization inside the model.

``graft.train.fit`` builds its model from a name, and a hybrid with a randomly initialised ViT at a
small size needs options a name does not carry (``pretrained`` per branch, ``img_size``), so this
script hands fit the model through its model-building step (``_bridge``) until fit accepts model
options; the training itself is fit's, unchanged.

Run:  .venv/bin/python bench/bench_hybrid.py --per-class 20 --epochs 3 --out bench-out/hybrid
One model per process (``--only TEXT``), then ``--collect out*/results.json`` prints one table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import nn

CNN, VIT = "efficientnet_lite0", "vit_tiny_patch16_224"
FUSIONS = ("concat", "gated", "attention")


def make_models(
    cnn_size: int, vit_size: int, vit_patch: int, vit_depth: int
) -> dict[str, Callable[[int], nn.Module]]:
    """Label -> factory(num_classes) for every model of the bench."""
    from graft.hybrid import create_hybrid
    from graft.models import create_model

    vit_kwargs = {"img_size": vit_size, "patch_size": vit_patch, "depth": vit_depth}

    def cnn(n: int) -> nn.Module:
        return create_model(CNN, num_classes=n, pretrained=True)

    def vit(n: int) -> nn.Module:
        return create_model(VIT, num_classes=n, pretrained=False, **vit_kwargs)

    def hybrid(fusion: str) -> Callable[[int], nn.Module]:
        return lambda n: create_hybrid(
            f"{CNN}+{VIT}",
            num_classes=n,
            pretrained={CNN: True, VIT: False},
            fusion=fusion,
            branch_kwargs={VIT: vit_kwargs},
            branch_inputs={CNN: {"input_size": cnn_size}},
        )

    models = {f"CNN {CNN} (ImageNet)": cnn, f"ViT {VIT} (random init)": vit}
    models.update({f"hybrid {fusion}": hybrid(fusion) for fusion in FUSIONS})
    return models


@contextmanager
def _bridge(factory: Callable[[int], nn.Module]):
    """Let graft.train.fit build ``factory(num_classes)`` instead of a model from a name."""
    with mock.patch("graft.train.fitting.create_model", lambda cfg, n: factory(n)):
        yield


@torch.inference_mode()
def latency(model: nn.Module, size: tuple[int, int, int], repeats: int = 20) -> tuple[float, float]:
    """(median ms per image at batch 1, images/s at batch 32), after warm-up."""
    model.eval()
    one, batch = torch.rand(1, *size), torch.rand(32, *size)
    for _ in range(3):
        model(one)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model(one)
        times.append(time.perf_counter() - t)
    model(batch)
    t = time.perf_counter()
    for _ in range(3):
        model(batch)
    return 1000 * statistics.median(times), 3 * 32 / (time.perf_counter() - t)


def run_one(
    label: str, factory: Callable[[int], nn.Module], data: Path, out: Path, args: Any
) -> dict:
    from graft.bundle import load_bundle
    from graft.train import fit

    image_size = args.vit_size if label.startswith("ViT") else args.cnn_size
    started = time.perf_counter()
    with _bridge(factory):
        result = fit(
            str(data), recipe="full", epochs=args.epochs, batch_size=args.batch_size, image_size=image_size,
            seed=args.seed, out=str(out / label.split(" (")[0].replace(" ", "-")), progress=False,
            workers=args.workers, val_split=0.1,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    bundle = load_bundle(result.bundle)
    size = tuple(bundle.data_config["input_size"])
    ms, ips = latency(bundle.model, size)
    return {
        "model": label,
        "test_acc": round(float(result.metrics.get("test_acc", float("nan"))), 4),
        "params_M": round(sum(p.numel() for p in bundle.model.parameters()) / 1e6, 2),
        "input": f"{size[1]}px",
        "latency_ms_b1": round(ms, 1),
        "img_per_s_b32": round(ips, 1),
        "fit_s": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--per-class", type=int, default=20, help="animals images per class (80/20 train/test)"
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cnn-size", type=int, default=64)
    p.add_argument("--vit-size", type=int, default=32, help="the images are 28 px silhouettes")
    p.add_argument("--vit-patch", type=int, default=8)
    p.add_argument("--vit-depth", type=int, default=4, help="transformer blocks (vit_tiny has 12)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--collect", nargs="*", default=None, help="only print a table of these results.json"
    )
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, help="run only models whose label contains this text")
    p.add_argument("--out", default="bench-out/hybrid")
    args = p.parse_args(argv)
    if args.collect is not None:
        print(_table([r for f in args.collect for r in json.loads(Path(f).read_text())["rows"]]))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)

    from graft.data import sample_dataset
    from graft.io import write_json
    from graft.runtime import tune_allocator

    tune_allocator()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    data = sample_dataset("animals", out / "data", per_class=args.per_class, seed=args.seed)
    rows = []
    for label, factory in make_models(
        args.cnn_size, args.vit_size, args.vit_patch, args.vit_depth
    ).items():
        if args.only and args.only not in label:
            continue
        rows.append(run_one(label, factory, data, out / "runs", args))
        print(rows[-1], flush=True)
    write_json(
        out / "results.json",
        {"settings": vars(args), "threads": torch.get_num_threads(), "rows": rows},
    )
    print(_table(rows))
    return 0


def _table(rows: list[dict]) -> str:
    keys = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
