"""Bench: a CNN alone, a ViT alone and CNN+ViT hybrids (each fusion) on the animals sample.

Every model gets the same budget through ``graft.train.fit``: recipe ``full`` (all parameters train,
learning rates spread from head to stem), the same epochs, batch size, seed, augmentation and data.
Reported: test accuracy, parameters, latency (batch 1, median) and throughput (batch 32) on this CPU,
and for the hybrids a check that the pretrained CNN is not drowned by the random ViT: the test
accuracy with one branch's pooled features replaced by their test-set mean (``concat``, ``gated``),
and the gated fusion's branch weights on the test images.

- CNN: ``efficientnet_lite0`` with its shipped ImageNet weights, at ``--cnn-size`` px.
- ViT: ``vit_tiny_patch16_224`` randomly initialised (no ViT weights install offline) at ``--vit-size``
  px with ``--vit-patch`` px patches and ``--vit-depth`` blocks (default 32 px, 8 px patches: 16
  tokens, near the images' 28 px; 4 blocks to fit the CPU budget).
- Hybrids: both branches, each fed its own size and normalization inside the model.

Models are built by fit itself from ``model_args`` (what ``graft fit --model-arg`` passes), e.g.
``pretrained={cnn: true, vit: false}``.

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hybrid.py --per-class 100 --epochs 3 --threads 1
One results.json per run; ``--only TEXT`` runs the models whose label contains TEXT, and
``--collect out*/results.json`` prints one table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

CNN, VIT = "efficientnet_lite0", "vit_tiny_patch16_224"
FUSIONS = ("concat", "gated", "attention")


def make_models(cnn_size: int, vit_size: int, vit_patch: int, vit_depth: int) -> dict[str, dict]:
    """Label -> fit options (model, model_args, image_size, weights) for every model of the bench."""
    vit_kwargs = {"img_size": vit_size, "patch_size": vit_patch, "depth": vit_depth}
    models = {
        f"CNN {CNN} (ImageNet)": {"model": CNN, "image_size": cnn_size},
        f"ViT {VIT} (random init)": {
            "model": VIT, "image_size": vit_size, "weights": "none", "model_args": vit_kwargs,
        },
    }  # fmt: skip
    for fusion in FUSIONS:
        models[f"hybrid {fusion}"] = {
            "model": f"{CNN}+{VIT}",
            "image_size": cnn_size,
            "model_args": {
                "fusion": fusion,
                "pretrained": {"cnn": True, "vit": False},
                "branch_kwargs": {"vit": vit_kwargs},
                "branch_inputs": {"cnn": {"input_size": cnn_size}},
            },
        }
    return models


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


def run_one(label: str, options: dict, data: Path, out: Path, args: Any) -> dict:
    from graft.bundle import load_bundle
    from graft.train import fit

    started = time.perf_counter()
    result = fit(
        str(data), **options, recipe="full", epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, out=str(out / label.split(" (")[0].replace(" ", "-")), progress=False,
        workers=args.workers, val_split=0.1,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    bundle = load_bundle(result.bundle)
    size = tuple(bundle.data_config["input_size"])
    ms, ips = latency(bundle.model, size)
    row = {
        "model": label,
        "test_acc": round(float(result.metrics.get("test_acc", float("nan"))), 4),
        "params_M": round(sum(p.numel() for p in bundle.model.parameters()) / 1e6, 2),
        "input": f"{size[1]}px",
        "latency_ms_b1": round(ms, 1),
        "img_per_s_b32": round(ips, 1),
        "fit_s": round(seconds, 1),
    }
    if hasattr(bundle.model, "pooled_branches"):
        row.update(branch_checks(bundle, data))
    return row


@torch.inference_mode()
def load_test_images(bundle: Any, data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All test images under the bundle's eval transform, and their labels."""
    from graft.data import ImageDataset, build_transforms, scan_dataset

    splits = scan_dataset(str(data), verify=False)
    ds = ImageDataset(splits.test, build_transforms(bundle.data_config, train=False))
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


@torch.inference_mode()
def branch_checks(bundle: Any, data: Path) -> dict[str, Any]:
    """Accuracy with one branch mean-ablated (concat/gated) and the gated fusion's weights."""
    from graft.hybrid import CrossAttentionFusion, GatedFusion

    model = bundle.model.eval()
    x, y = load_test_images(bundle, data)
    pooled = [model.pooled_branches(x[i : i + 50]) for i in range(0, len(x), 50)]
    pooled = {k: torch.cat([p[k] for p in pooled]) for k in pooled[0]}
    keys = list(pooled)
    out: dict[str, Any] = {}

    def acc(feats: dict[str, torch.Tensor]) -> float:
        logits = model.forward_head(model.fusion([feats[k] for k in keys]))
        return round(float((logits.argmax(1) == y).float().mean()), 4)

    if not isinstance(model.fusion, CrossAttentionFusion):
        out["acc_recomputed"] = acc(pooled)
        for k in keys:  # this branch's features -> their mean: what the head gets from the rest
            ablated = {**pooled, k: pooled[k].mean(0, keepdim=True).expand_as(pooled[k])}
            out[f"acc_without_{k}"] = acc(ablated)
    if isinstance(model.fusion, GatedFusion):
        w = model.fusion.gate_weights([pooled[k] for k in keys])
        for i, k in enumerate(keys):
            out[f"gate_{k}_mean"] = round(float(w[:, i].mean()), 3)
            out[f"gate_{k}_min_max"] = [
                round(float(w[:, i].min()), 3),
                round(float(w[:, i].max()), 3),
            ]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--per-class",
        type=int,
        default=20,
        help="animals images per class (80/20 train/test, 10%% of train for validation)",
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
    p.add_argument(
        "--retime",
        action="store_true",
        help="only time the bundles under --out/runs again, interleaved in one process (latency "
        "ratios under a shared CPU's changing load), into --out/latency.json",
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
    if args.retime:
        print(_table(retime(Path(args.out), rounds=5)))
        return 0

    from graft.data import sample_dataset
    from graft.io import write_json
    from graft.runtime import tune_allocator

    tune_allocator()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    data = sample_dataset("animals", out / "data", per_class=args.per_class, seed=args.seed)
    rows = []
    started = time.perf_counter()
    for label, options in make_models(
        args.cnn_size, args.vit_size, args.vit_patch, args.vit_depth
    ).items():
        if args.only and args.only not in label:
            continue
        rows.append(run_one(label, options, data, out / "runs", args))
        print(rows[-1], flush=True)
        write_json(out / "results.json", _results(args, rows, started))
    write_json(out / "results.json", _results(args, rows, started))
    print(_table(rows))
    return 0


def retime(out: Path, rounds: int = 5) -> list[dict]:
    """Time every bundle under ``out/runs`` in turn, ``rounds`` times; medians per model."""
    from graft.bundle import load_bundle
    from graft.io import write_json

    bundles = {d.name: load_bundle(d / "bundle") for d in sorted((out / "runs").iterdir())}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in bundles}
    for _ in range(rounds):  # interleaved: a change of load hits every model alike
        for name, b in bundles.items():
            times[name].append(latency(b.model, tuple(b.data_config["input_size"]), repeats=10))
    rows = [
        {
            "model": name,
            "latency_ms_b1": round(statistics.median(t[0] for t in ts), 1),
            "img_per_s_b32": round(statistics.median(t[1] for t in ts), 1),
        }
        for name, ts in times.items()
    ]
    write_json(out / "latency.json", {"threads": torch.get_num_threads(), "rounds": rounds,
                                      "rows": rows})  # fmt: skip
    return rows


def _results(args: argparse.Namespace, rows: list[dict], started: float) -> dict[str, Any]:
    import os

    return {
        "settings": vars(args),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "wall_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }


def _table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
