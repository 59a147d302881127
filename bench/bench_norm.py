"""Bench: ``pretrained`` versus ``dataset`` normalization, linear probe and short fine-tune accuracy.

The evidence behind the recommendation ``graft stats`` prints. On the animals sample (real 28x28
grayscale silhouettes, 10 classes, fixed train/ and test/ split) with ``efficientnet_lite0`` and its
shipped weights, for each normalization:

- probe: features of the frozen backbone (``graft.extract``) with the data config's mean/std, then a
  CV-tuned logistic regression (``graft.features.Probe``); accuracy on test/;
- fit: ``graft.fit(..., normalization=mode)`` (recipe ``head`` by default, a few epochs); its
  ``test_acc`` on test/.

``dataset`` statistics are the mean/std of the training images only
(:func:`graft.data.normalization_stats`), as a model stores them.

Run:  .venv/bin/python bench/bench_norm.py --per-class 40 --image-size 64 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

MODES = ("pretrained", "dataset")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--per-class", type=int, default=40, help="images per class in the sample")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2, help="fine-tune epochs")
    p.add_argument("--recipe", default="head", help="graft fit recipe (head, auto, full, ...)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-fit", action="store_true", help="only the probe side")
    p.add_argument("--data", default=None, help="sample folder (default: OUT/animals-PER_CLASS)")
    p.add_argument("--out", default="bench-out/norm")
    return p.parse_args()


def probe_accuracy(root: Path, mode: str, stats: dict[str, list[float]], args) -> dict[str, Any]:
    """Extract with ``mode``'s mean/std, fit a CV-tuned logistic regression, score on test/."""
    import numpy as np

    import graft
    from graft.features import Probe

    net = graft.create_model(args.model, num_classes=0, pretrained=True)
    if mode == "dataset":  # extraction derives its data config from the model's pretrained_cfg
        net.pretrained_cfg = {**net.pretrained_cfg, "mean": stats["mean"], "std": stats["std"]}
    elif mode != "pretrained":  # MEAN:STD, one value per channel or one for all
        from graft.data import parse_normalization

        mean, std = parse_normalization(mode)
        net.pretrained_cfg = {**net.pretrained_cfg, "mean": tuple(mean) * (3 // len(mean)),
                              "std": tuple(std) * (3 // len(std))}  # fmt: skip
    start = time.perf_counter()
    feats = graft.extract(root, model=net, image_size=args.image_size, progress=False, workers=0)
    train, test = (np.asarray(feats.splits) == s for s in ("train", "test"))
    fitted = Probe("logreg", cv=5, seed=args.seed).fit(
        feats.features[train].reshape(train.sum(), -1), feats.labels[train]
    )
    x_test = feats.features[test].reshape(test.sum(), -1)
    acc = float(np.mean(fitted.predict(x_test) == feats.labels[test]))
    return {
        "test_accuracy": acc,
        "cv_accuracy": fitted.cv_accuracy_,
        "best_params": fitted.best_params_,
        "wall_s": round(time.perf_counter() - start, 2),
    }


def fit_accuracy(root: Path, mode: str, args) -> dict[str, Any]:
    """``graft.fit`` with ``normalization=mode``; its test accuracy."""
    import graft

    out = Path(args.out) / f"fit-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = graft.fit(
        str(root), model=args.model, recipe=args.recipe, epochs=args.epochs,
        image_size=args.image_size, normalization=mode, batch_size=args.batch_size,
        seed=args.seed, workers=0, progress=False, out=str(out),
    )  # fmt: skip
    return {
        "test_accuracy": result.metrics.get("test_acc"),
        "val_accuracy": result.metrics.get("val_acc"),
        "wall_s": round(time.perf_counter() - start, 2),
    }


def print_table(stats: dict[str, Any], pretrained: dict[str, Any], rows: dict[str, dict]) -> None:
    fmt = lambda v: ", ".join(f"{x:.3f}" for x in v)  # noqa: E731
    print(f"dataset (train) mean {fmt(stats['mean'])}  std {fmt(stats['std'])}")
    print(f"pretrained      mean {fmt(pretrained['mean'])}  std {fmt(pretrained['std'])}")
    print(f"{'normalization':<14} {'probe test acc':>15} {'probe CV acc':>13} {'fit test acc':>13}")
    for mode in MODES:
        probe, fitted = rows[mode]["probe"], rows[mode].get("fit", {})
        fit_acc = fitted.get("test_accuracy")
        print(
            f"{mode:<14} {probe['test_accuracy']:>15.3f} {probe['cv_accuracy']:>13.3f} "
            f"{'-' if fit_acc is None else f'{fit_acc:.3f}':>13}"
        )


def main() -> None:
    args = parse_args()
    from graft.data import dataset_stats, normalization_stats, sample_dataset, scan_dataset
    from graft.data.stats import pretrained_cfg_for

    data = args.data or f"{args.out}/animals-{args.per_class}"
    root = sample_dataset("animals", data, per_class=args.per_class, seed=args.seed)
    splits = scan_dataset(root, verify=False)
    stats = normalization_stats(splits, progress=False)
    advice = dataset_stats(root, model=args.model, progress=False)
    print(f"graft stats recommends: {advice.recommendation} ({advice.reason})", flush=True)
    rows: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        rows[mode] = {"probe": probe_accuracy(root, mode, stats, args)}
        print(f"{mode}: probe {rows[mode]['probe']}", flush=True)
        if not args.skip_fit:
            rows[mode]["fit"] = fit_accuracy(root, mode, args)
            print(f"{mode}: fit {rows[mode]['fit']}", flush=True)
    pretrained = pretrained_cfg_for(args.model)
    print_table(stats, pretrained, rows)
    summary = {
        "args": vars(args),
        "dataset_stats": stats,
        "recommendation": advice.recommendation,
        "rows": rows,
        "load_average": os.getloadavg(),
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_norm.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
