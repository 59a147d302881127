"""``graft extract DATA --model NAME``: features of every image into a resumable feature store.

Example:
    $ graft extract data/pets --model efficientnet_lite0 --image-size 128 --out feats/pets
    $ graft extract data/pets --model resnet50 --pool none --image-size 256 --layer 4 --out feats/maps
    $ graft extract data/pets --accelerator cpu --devices 2 --out feats/pets
    $ graft extract data/pets --model efficientnet_lite0+vit_tiny_patch16_224 \
          --model-arg 'pretrained={cnn: true, vit: false}' --model-arg 'branch_kwargs={vit: {img_size: 64}}'
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from graft.commands._common import add_parser, emit, note, save_config
from graft.options import (
    ACCELERATOR_HELP,
    DEVICES_HELP,
    NUM_NODES_HELP,
    STRATEGY_HELP,
    add_deprecated,
    kwargs_of,
    option,
    resolve,
)

DATA_HELP = "ImageFolder, folder with train/ val/ test/, or CSV of path,label"
MODEL_HELP = "backbone name (see `graft models`)"
WEIGHTS_HELP = "pretrained (shipped/offline weights), none (random init) or a weights file"
MODEL_ARG_HELP = (
    "extra model argument, YAML value, repeatable, as in graft fit (hybrids: fusion=gated, "
    "'pretrained={cnn: true, vit: false}', 'branch_kwargs={vit: {img_size: 64}}')"
)


@dataclass
class ExtractOptions:
    """Options of ``graft extract`` (and keyword arguments of :func:`graft.extract`)."""

    data: str = option(None, DATA_HELP, positional=True)
    model: str = option("efficientnet_lite0", MODEL_HELP)
    weights: str = option("pretrained", WEIGHTS_HELP)
    model_args: dict[str, Any] = option({}, MODEL_ARG_HELP, flag="--model-arg")
    layer: str | None = option(
        None, "stage index (0 = stem ... last) or module name", default_text="the last stage"
    )
    pool: Literal["avg", "max", "none"] = option(
        "avg", "pool maps to vectors (avg: the model's own pre-logits; max) or keep them (none)"
    )
    image_size: int | None = option(None, "input size in pixels", default_text="the model's")
    out: str | None = option(
        None, "feature store folder (with config.yaml)", default_text="DATA's name + '-features'"
    )
    batch_size: int = option(64, "images per batch (per process)")
    workers: int | None = option(
        None, "image decoding processes", default_text="cores - 1, at most 4"
    )
    resume: bool = option(True, "reuse features already in --out for unchanged images")
    progress: bool = option(True, "show a progress bar (on stderr)")
    accelerator: str = option("auto", ACCELERATOR_HELP)
    devices: str = option(
        "auto", DEVICES_HELP + "; each process extracts a shard, rank 0 writes the store"
    )
    strategy: str = option("auto", STRATEGY_HELP)
    num_nodes: int = option(1, NUM_NODES_HELP)


OPTIONS = {"extract": ExtractOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "extract",
        ExtractOptions,
        help="extract backbone features into a feature store",
        description="Run a pretrained backbone over an image dataset once and store its features "
        "(safetensors shards + manifest.json). Interrupted runs resume; unchanged images are "
        "reused. Under torchrun/srun the launcher's processes share the work.",
    )
    add_hardware_deprecations(p)
    add_deprecated(p, "--random-init", "weights", "--weights none", value="none")
    p.set_defaults(func=run)


def add_hardware_deprecations(p: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda|cuda:N`` (the old spelling) -> ``--accelerator`` / ``--devices``."""
    add_deprecated(
        p, "--device", "old_device", "--accelerator cpu|gpu (and --devices N)", convert=str
    )


def hardware_of(args: argparse.Namespace, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` with an old ``--device`` turned into ``accelerator`` / ``devices``."""
    old = getattr(args, "old_device", None)
    if old is not None:  # --accelerator / --devices given as well win
        kind, _, index = old.partition(":")
        if getattr(args, "accelerator", None) is None:
            given.setdefault("accelerator", kind)
        if getattr(args, "devices", None) is None:
            given.setdefault("devices", f"{index}," if index else "1")
    return given


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graft import distributed
    from graft.features import extract

    opts = resolve(args, ExtractOptions, **hardware_of(args, {}))
    opts.out = opts.out or f"{Path(opts.data).resolve().name}-features"
    distributed.hardware(opts.accelerator, opts.devices, opts.strategy, opts.num_nodes)
    launched = distributed.init_from_env()  # torchrun / srun: this process is one rank
    kwargs = kwargs_of(opts, skip=("data", "strategy", "num_nodes", "progress"))
    f = extract(opts.data, progress=opts.progress and not args.quiet, **kwargs)
    if launched and not distributed.is_rank_zero():
        return 0
    save_config(opts, opts.out)
    counts = {s: f.splits.count(s) for s in f.split_names}
    shape = list(f.features.shape[1:])
    text = (
        f"{len(f)} images ({', '.join(f'{s} {n}' for s, n in counts.items())}), "
        f"features {tuple(shape)}, {len(f.classes)} classes"
    )
    data = {"out": opts.out, "images": len(f), "splits": counts, "shape": shape,
            "classes": list(f.classes)}  # fmt: skip
    emit(args, data, text)
    note(f"feature store: {opts.out}")
    return 0
