"""``graft stats DATA``: what a dataset looks like, and which normalization to use.

Example:
    $ graft stats data/pets --model efficientnet_lite0
    $ graft stats data/xrays --json --out runs/xrays-stats
    $ graft stats data/xrays --accelerator cpu --devices 2
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from graft.commands._common import add_parser, emit, note, out_file, save_config
from graft.commands.extract import DATA_HELP
from graft.options import (
    ACCELERATOR_HELP,
    DEVICES_HELP,
    NUM_NODES_HELP,
    STRATEGY_HELP,
    option,
    resolve,
)


@dataclass
class StatsOptions:
    """Options of ``graft stats`` (:func:`graft.dataset_stats` takes ``model``, ``workers``, ``progress``)."""

    data: str = option(None, DATA_HELP, positional=True)
    model: str = option(
        "efficientnet_lite0", "model whose pretrained mean/std to compare with (see `graft models`)"
    )
    out: str | None = option(
        None, "folder for stats.json and config.yaml", default_text="print only"
    )
    workers: int | None = option(
        None, "decoding threads per process", default_text="CPU cores, at most 8"
    )
    progress: bool = option(True, "show a progress bar (on stderr)")
    accelerator: str = option("auto", ACCELERATOR_HELP + "; decoding runs on the CPU")
    devices: str = option("auto", DEVICES_HELP + "; the processes' exact sums are all-reduced")
    strategy: str = option("auto", STRATEGY_HELP)
    num_nodes: int = option(1, NUM_NODES_HELP)


OPTIONS = {"stats": StatsOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "stats",
        StatsOptions,
        help="dataset statistics: exact mean/std, class counts, sizes, duplicates, corrupt files",
        description="Decode every image once (in parallel) and report exact per-channel mean and "
        "std, images per class, size distribution, grayscale share, exact duplicates and corrupt "
        "files; compare the mean/std with a model's pretrained values and recommend a "
        "normalization. --devices N splits the images over N processes (same result as one).",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft import distributed

    opts = resolve(args, StatsOptions)
    # decoding is CPU work: with accelerator auto it counts CPU processes, else one per device
    accelerator = "cpu" if opts.accelerator == "auto" else opts.accelerator
    hw = distributed.hardware(accelerator, opts.devices, opts.strategy, opts.num_nodes)
    if distributed.init_from_env():  # launched by torchrun / srun: one report, from rank 0
        stats = _stats(opts)
        if not distributed.is_rank_zero():
            return 0
    elif hw.processes > 1:
        stats = _spawned_stats(opts, hw.processes)
    else:
        stats = _stats(opts)
    data = stats.to_dict()
    path = out_file(opts.out, "stats.json", (".json",))
    if path is not None:
        from graft.io import write_json

        write_json(path, data)
        if path.name == "stats.json":
            save_config(opts, path.parent)
        note(f"statistics written to {path}")
    emit(args, data, stats.format())
    return 0


def _stats(opts: StatsOptions):
    from graft.data.stats import dataset_stats

    return dataset_stats(opts.data, model=opts.model, workers=opts.workers, progress=opts.progress)


def _spawned_stats(opts: StatsOptions, processes: int):
    """Run :func:`_stats` in ``processes`` processes (Lightning Fabric); rank 0's result."""
    from graft import distributed

    return distributed.spawn(_stats, processes, opts)
