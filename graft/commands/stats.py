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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.data.stats import dataset_stats
    from graft.io import write_json

    stats = dataset_stats(
        args.data, model=args.model, workers=args.workers, progress=not args.no_progress
    )
    data = stats.to_dict()
    if args.out:
        write_json(args.out, data)
        print(f"statistics written to {args.out}", file=sys.stderr)
    print(json.dumps(data, indent=2) if args.json else stats.format())
    return 0
