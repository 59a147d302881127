"""``graft demo --out DIR``: transfer learning in a few minutes on the real animals sample.

Writes the animals sample (60 images per class: 480 train / 120 test), fine-tunes EfficientNet-Lite0
with its shipped ImageNet weights at 64 px with the ``auto`` recipe, evaluates on the held-out
test split, and prints the accuracy next to the same recipe from random initialisation.

Example:
    $ graft demo --out demo-out
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

PER_CLASS = 60
IMAGE_SIZE = 64
EPOCHS = 10  # in total: recipe auto's rule gives 4 head + 6 full epochs (graft.train.recipes)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="fine-tune EfficientNet-Lite0 on the animals sample, pretrained vs random init",
        description="Materialise the animals sample, fine-tune with and without pretrained weights, compare.",
    )
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument(
        "--per-class", type=int, default=PER_CLASS, help=f"images per class (default: {PER_CLASS})"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=IMAGE_SIZE,
        help=f"input size in pixels (default: {IMAGE_SIZE})",
    )
    p.add_argument(
        "--model", default="efficientnet_lite0", help="backbone (default: efficientnet_lite0)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.data import sample_dataset

    out = Path(args.out)
    data = sample_dataset("animals", out / "animals", per_class=args.per_class)
    print(f"animals sample: {data} ({args.per_class} images per class, 80/20 train/test)")
    rows = []
    for label, weights in (("pretrained (ImageNet)", "pretrained"), ("random init", "none")):
        rows.append((label, *_fit_once(args, data, out / weights, weights)))
    print(f"\n{args.model} at {args.image_size} px, recipe auto, {EPOCHS} epochs (plan above)")
    print(f"{'weights':24s} {'test accuracy':>14s} {'seconds':>8s}")
    for label, acc, seconds in rows:
        print(f"{label:24s} {acc:14.3f} {seconds:8.0f}")
    print(f"\nbundles: {out / 'pretrained' / 'bundle'}, {out / 'none' / 'bundle'}")
    return 0


def _fit_once(args: argparse.Namespace, data: Path, run: Path, weights: str) -> tuple[float, float]:
    from graft.train.fitting import fit

    if (run / "config.yaml").is_file():  # an earlier demo run: start afresh
        shutil.rmtree(run)
    print(f"training with weights={weights}: plan, estimate and progress on stderr", flush=True)
    started = time.perf_counter()
    result = fit(data, model=args.model, weights=weights, image_size=args.image_size, recipe="auto",
                 epochs=EPOCHS, out=str(run), progress=True)  # fmt: skip
    return result.metrics.get("test_acc", float("nan")), time.perf_counter() - started
