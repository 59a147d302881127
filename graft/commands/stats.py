"""``graft stats DATA``: what a dataset looks like, and which normalization to use.

Example:
    $ graft stats data/pets --model efficientnet_lite0
    $ graft stats data/xrays --json --out xrays-stats.json
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stats",
        help="dataset statistics: exact mean/std, class counts, sizes, duplicates, corrupt files",
        description="Decode every image once (in parallel) and report exact per-channel mean and std, "
        "images per class, size distribution, grayscale share, exact duplicates and corrupt files; "
        "compare the mean/std with a model's pretrained values and recommend a normalization.",
    )
    p.add_argument(
        "data",
        help="image folder (a subfolder per class, or train/ val/ test/), or a path,label CSV",
    )
    p.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="model whose pretrained mean/std to compare with (default efficientnet_lite0)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the statistics as JSON instead of a report"
    )
    p.add_argument("--out", help="also write the statistics as JSON to this file")
    p.add_argument(
        "--workers", type=int, default=None, help="decode threads (default: CPU cores, at most 8)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="decode in N local processes (gloo) whose exact sums are all-reduced (default 1); "
        "under torchrun/srun the launcher's processes are used instead",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft import distributed
    from graft.errors import ConfigError
    from graft.io import write_json

    if args.devices < 1:
        raise ConfigError(f"--devices must be at least 1, got {args.devices}")
    if distributed.init_from_env():  # launched by torchrun / srun: one report, from rank 0
        stats = _stats(args)
        if not distributed.is_rank_zero():
            return 0
    elif args.devices > 1:
        stats = _spawned_stats(args)
    else:
        stats = _stats(args)
    data = stats.to_dict()
    if args.out:
        write_json(args.out, data)
        print(f"statistics written to {args.out}", file=sys.stderr)
    print(json.dumps(data, indent=2) if args.json else stats.format())
    return 0


def _stats(args: argparse.Namespace):
    from graft.data.stats import dataset_stats

    return dataset_stats(
        args.data, model=args.model, workers=args.workers, progress=not args.no_progress
    )


def _spawned_stats(args: argparse.Namespace):
    """Run :func:`_stats` in ``args.devices`` gloo processes; rank 0 hands the result back as JSON."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from graft import distributed
    from graft.data.stats import DatasetStats
    from graft.io import read_json

    with tempfile.TemporaryDirectory(prefix="graft-stats-") as tmp:
        result = Path(tmp) / "stats.json"
        distributed.spawn(_rank_stats, args.devices, args, str(result))
        data = read_json(result)
    names = {f.name for f in dataclasses.fields(DatasetStats)}
    stats = DatasetStats(**{k: v for k, v in data.items() if k in names})
    stats.corrupt = [tuple(item) for item in stats.corrupt]
    return stats


def _rank_stats(args: argparse.Namespace, result: str) -> None:
    from graft import distributed
    from graft.io import write_json

    stats = _stats(args)
    if distributed.is_rank_zero():
        write_json(result, stats.to_dict())
