"""``graft lr-find DATA``: learning-rate range test; prints the suggestion, saves a plot.

Example:
    $ graft lr-find data/pets --phase full --out runs/lr
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from graft.train.cli_options import add_config_flags

    p = subparsers.add_parser(
        "lr-find",
        help="learning-rate range test (Lightning's LR finder)",
        description="Grow the LR exponentially over a few batches and suggest one from the loss curve.",
    )
    p.add_argument("data", help="image folder (class sub-folders or train/val/test) or CSV")
    p.add_argument("--config", help="YAML file of fit options")
    p.add_argument(
        "--phase", choices=["head", "full"], default="head", help="what trains (default: head)"
    )
    p.add_argument("--min-lr", type=float, default=1e-6)
    p.add_argument("--max-lr", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=100, help="batches to run (default: 100)")
    add_config_flags(p, skip=("data", "resume"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.train.cli_options import options_from_args
    from graft.train.config import FitConfig
    from graft.train.lr_finder import lr_find

    config = FitConfig.load(args.config) if args.config else None
    result = lr_find(args.data, phase=args.phase, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps,
                     config=config, **options_from_args(args))  # fmt: skip
    shown = (
        f"{result.suggestion:.3g}"
        if result.suggestion is not None
        else "none (loss curve too flat or noisy)"
    )
    print(f"suggested learning rate ({result.phase} phase): {shown}")
    print(f"plot: {result.plot}")
    return 0
