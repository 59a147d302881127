"""Bench: what a CNN+ViT hybrid costs next to its two branches alone, all at one --image-size.

In one run on the animals sample, every model trains through ``graft.train.fit`` with the same
budget: recipe ``full`` (one phase, all parameters train), the same epochs, batch size, seed and
data, and the same ``image_size`` (default 96 px):

- branch 1: ``efficientnet_lite0`` with its shipped ImageNet weights;
- branch 2: ``vit_tiny_patch16_224`` randomly initialised (no ViT weights install offline) with
  ``--vit-depth`` blocks, built for the image size (16 px patches: 36 tokens at 96 px);
- the hybrid ``efficientnet_lite0+vit_tiny_patch16_224`` with each fusion (concat, gated,
  attention), built by fit from ``model_args`` with NO per-branch size: both branches compute at
  ``image_size`` by graft's size rule (:mod:`graft.hybrid.sizes`).

Reported per model: test accuracy, the full phase's epoch time (median over its epochs after the
first, which includes warm-up; data loading included, validation excluded): wall seconds (fit's
``epoch_seconds``) and this process's CPU seconds over the same span (robust to a shared CPU),
each branch's input size as the bundle records it, parameters, and for hybrids the ratio
``hybrid epoch / (branch 1 epoch + branch 2 epoch)``, wall and CPU (target: at most 1.2, judged
on CPU seconds, which a shared machine's load does not inflate; with one thread on an idle
machine wall and CPU seconds agree),
and the accuracy with one branch's pooled features replaced by their test mean (concat, gated).
Ratios are measured in the same run, on the same machine; absolute seconds depend on it (note the
load). A subset of the sample (``--per-class``) and few epochs keep it to minutes on a CPU.

Run:  OMP_NUM_THREADS=1 python bench/bench_hybrid.py --per-class 30 --epochs 3 --image-size 96 \
          --threads 1
``--only TEXT[,TEXT]`` runs the models whose label contains one of the texts (the ratio needs both
branches), e.g. ``--with-224 --only branch,@224``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

CNN, VIT = "efficientnet_lite0", "vit_tiny_patch16_224"
FUSIONS = ("concat", "gated", "attention")
BRANCH_LABELS = ("branch cnn", "branch vit")
TARGET_RATIO = 1.2


def make_models(image_size: int, vit_depth: int, weights_size: bool = False) -> dict[str, dict]:
    """Label -> fit options for every model of the bench (all at ``image_size``; with
    ``weights_size``, also the concat hybrid with both branches overridden to 224 px)."""
    vit_kwargs = {"depth": vit_depth}
    models = {
        "branch cnn": {"model": CNN},
        "branch vit": {"model": VIT, "weights": "none",
                       "model_args": {**vit_kwargs, "img_size": image_size}},
    }  # fmt: skip
    for fusion in FUSIONS:
        models[f"hybrid {fusion}"] = {
            "model": f"{CNN}+{VIT}",
            "model_args": {
                "fusion": fusion,
                "pretrained": {"cnn": True, "vit": False},
                "branch_kwargs": {"vit": vit_kwargs},
            },
        }
    if weights_size:  # the behaviour before the size rule: both branches at 224 px inside
        models["hybrid concat @224"] = {
            "model": f"{CNN}+{VIT}",
            "model_args": {
                **models["hybrid concat"]["model_args"],
                "branch_inputs": {"cnn": {"input_size": 224}, "vit": {"input_size": 224}},
            },
        }
    return {label: {**o, "image_size": image_size} for label, o in models.items()}


def full_epoch_seconds(history: list[dict[str, Any]]) -> float:
    """Median ``epoch_seconds`` of the full phase, leaving out its first epoch when there are more."""
    times = [float(r["epoch_seconds"]) for r in history
             if r.get("phase") == "full" and r.get("epoch_seconds") not in (None, "")]  # fmt: skip
    if not times:
        raise RuntimeError("fit logged no epoch_seconds for a 'full' phase")
    return statistics.median(times[1:] if len(times) > 1 else times)


def cpu_timer() -> Any:
    """A Lightning callback: this process's CPU seconds per training epoch (same span as fit's
    ``epoch_seconds``: epoch start to the last training batch). Unlike wall time it does not grow
    when other processes share the CPU, so ratios survive a loaded machine (use one thread)."""
    import lightning.pytorch as pl

    class EpochCPU(pl.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = self._last = 0.0

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._start = self._last = time.process_time()

        def on_train_batch_end(self, *args: Any) -> None:
            self._last = time.process_time()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.seconds.append(self._last - self._start)

    return EpochCPU()


def run_one(label: str, options: dict, data: Path, out: Path, args: Any) -> dict:
    from graft.bundle import load_bundle
    from graft.hybrid import describe_branch_inputs
    from graft.train import fit

    started, timer = time.perf_counter(), cpu_timer()
    result = fit(
        str(data), **options, recipe="full", epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, out=str(out / label.replace(" ", "-")), progress=False,
        workers=args.workers, val_split=0.1, report=False, callbacks=[timer],
    )  # fmt: skip
    cpu = timer.seconds[1:] if len(timer.seconds) > 1 else timer.seconds
    bundle = load_bundle(result.bundle)
    size = bundle.data_config["input_size"]
    row = {
        "model": label,
        "test_acc": round(float(result.metrics.get("test_acc", float("nan"))), 4),
        "full_epoch_s": round(full_epoch_seconds(result.history), 2),
        "full_epoch_cpu_s": round(statistics.median(cpu), 2),
        "input": describe_branch_inputs(bundle.model) or f"{size[1]}x{size[2]}",
        "params_M": round(sum(p.numel() for p in bundle.model.parameters()) / 1e6, 2),
        "fit_s": round(time.perf_counter() - started, 1),
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
    """Test accuracy with one branch's pooled features mean-ablated (concat, gated fusions)."""
    from graft.hybrid import CrossAttentionFusion

    model = bundle.model.eval()
    if isinstance(model.fusion, CrossAttentionFusion):
        return {}
    x, y = load_test_images(bundle, data)
    pooled = [model.pooled_branches(x[i : i + 50]) for i in range(0, len(x), 50)]
    pooled = {k: torch.cat([p[k] for p in pooled]) for k in pooled[0]}
    keys = list(pooled)

    def acc(feats: dict[str, torch.Tensor]) -> float:
        logits = model.forward_head(model.fusion([feats[k] for k in keys]))
        return round(float((logits.argmax(1) == y).float().mean()), 4)

    out = {}
    for k in keys:  # this branch's features -> their mean: what the head gets from the rest
        out[f"acc_without_{k}"] = acc(
            {**pooled, k: pooled[k].mean(0, keepdim=True).expand_as(pooled[k])}
        )
    return out


def add_ratios(rows: list[dict]) -> None:
    """Hybrid epoch / sum of the branches' epochs, wall (``ratio_wall``) and CPU (``ratio_cpu``)."""
    by_label = {r["model"]: r for r in rows}
    if not all(b in by_label for b in BRANCH_LABELS):
        return
    for key, name in (("full_epoch_s", "ratio_wall"), ("full_epoch_cpu_s", "ratio_cpu")):
        branches = sum(by_label[b][key] for b in BRANCH_LABELS)
        for r in rows:
            if r["model"].startswith("hybrid"):
                r[name] = round(r[key] / branches, 2)
    for r in rows:  # CPU seconds: wall seconds on a shared CPU also count the other processes
        if "ratio_cpu" in r:
            r["meets_1.2x"] = r["ratio_cpu"] <= TARGET_RATIO


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--per-class",
        type=int,
        default=30,
        help="animals images per class (80/20 train/test, 10%% of train for validation)",
    )
    p.add_argument("--epochs", type=int, default=3, help="full-phase epochs per model")
    p.add_argument("--image-size", type=int, default=96, help="every model's --image-size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--vit-depth", type=int, default=4, help="transformer blocks (vit_tiny has 12)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--only",
        default=None,
        help="run only models whose label contains one of these comma-separated texts",
    )
    p.add_argument("--out", default="bench-out/hybrid")
    p.add_argument(
        "--with-224",
        action="store_true",
        help="also the concat hybrid with both branches at 224 px (what hybrids did before the "
        "size rule; about 5x the cost)",
    )
    p.add_argument(
        "--table",
        default=None,
        help="only print the table of this results.json (ratios recomputed)",
    )
    args = p.parse_args(argv)  # fmt: skip
    if args.table:
        rows = json.loads(Path(args.table).read_text())["rows"]
        add_ratios(rows)
        print(_table(rows))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)

    from graft.data import sample_dataset
    from graft.io import write_json
    from graft.runtime import tune_allocator

    tune_allocator()
    out = Path(args.out)
    data = sample_dataset("animals", out / "data", per_class=args.per_class, seed=args.seed)
    rows, started = [], time.perf_counter()
    models = make_models(args.image_size, args.vit_depth, args.with_224)
    for label, options in models.items():
        if args.only and not any(t in label for t in args.only.split(",")):
            continue
        rows.append(run_one(label, options, data, out / "runs", args))
        print(rows[-1], flush=True)
    add_ratios(rows)
    write_json(out / "results.json", _results(args, rows, started))
    print(_table(rows))
    return 0


def _results(args: argparse.Namespace, rows: list[dict], started: float) -> dict[str, Any]:
    return {
        "settings": vars(args),
        "threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "load_avg": os.getloadavg(),
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
