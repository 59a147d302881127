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
from dataclasses import dataclass
from pathlib import Path

from graft.commands._common import add_parser, emit, note
from graft.options import ACCELERATOR_HELP, DEVICES_HELP, option, resolve

PER_CLASS = 60
IMAGE_SIZE = 64
EPOCHS = 10  # in total: recipe auto's rule gives 4 head + 6 full epochs (graft.train.recipes)


@dataclass
class DemoOptions:
    """Options of ``graft demo``."""

    out: str = option("demo-out", "folder for the sample, both runs and their bundles")
    per_class: int = option(PER_CLASS, "images per class of the animals sample")
    image_size: int = option(IMAGE_SIZE, "input size in pixels")
    model: str = option("efficientnet_lite0", "backbone name (see `graft models`)")
    seed: int = option(0, "random seed of both runs")
    accelerator: str = option("auto", ACCELERATOR_HELP)
    devices: str = option("auto", DEVICES_HELP)


OPTIONS = {"demo": DemoOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "demo",
        DemoOptions,
        config=False,
        help="fine-tune EfficientNet-Lite0 on the animals sample, pretrained vs random init",
        description="Materialise the animals sample, fine-tune with and without pretrained "
        "weights, compare.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.data import sample_dataset

    opts = resolve(args, DemoOptions)
    out = Path(opts.out)
    data = sample_dataset("animals", out / "animals", per_class=opts.per_class)
    note(f"animals sample: {data} ({opts.per_class} images per class, 80/20 train/test)")
    rows = []
    for label, weights in (("pretrained (ImageNet)", "pretrained"), ("random init", "none")):
        rows.append((label, weights, *_fit_once(opts, data, out / weights, weights)))
    text = [
        f"\n{opts.model} at {opts.image_size} px, recipe auto, {EPOCHS} epochs (plan above)",
        f"{'weights':24s} {'test accuracy':>14s} {'seconds':>8s}",
    ]
    text += [f"{label:24s} {acc:14.3f} {seconds:8.0f}" for label, _, acc, seconds in rows]
    text.append(f"\nbundles: {out / 'pretrained' / 'bundle'}, {out / 'none' / 'bundle'}")
    data = {
        "model": opts.model,
        "image_size": opts.image_size,
        "runs": [
            {"weights": w, "test_acc": acc, "seconds": sec, "bundle": str(out / w / "bundle")}
            for _, w, acc, sec in rows
        ],
    }
    emit(args, data, "\n".join(text))
    return 0


def _fit_once(opts: DemoOptions, data: Path, run: Path, weights: str) -> tuple[float, float]:
    from graft.train.fitting import fit

    if (run / "config.yaml").is_file():  # an earlier demo run: start afresh
        shutil.rmtree(run)
    note(f"training with weights={weights}: plan, estimate and progress on stderr")
    started = time.perf_counter()
    result = fit(data, model=opts.model, weights=weights, image_size=opts.image_size, recipe="auto",
                 epochs=EPOCHS, out=str(run), progress=True, seed=opts.seed,
                 accelerator=opts.accelerator, devices=opts.devices)  # fmt: skip
    return result.metrics.get("test_acc", float("nan")), time.perf_counter() - started
