"""``graft lr-find DATA``: learning-rate range test; prints the suggestion, saves a plot.

Example:
    $ graft lr-find data/pets --phase full --out runs/lr
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

from graft.commands._common import add_parser, emit
from graft.options import combine, option
from graft.train.config import FitConfig


@dataclass
class LRFindOptions:
    """What ``graft lr-find`` adds to the fit options it trains with."""

    phase: Literal["head", "full"] = option(
        "head", "what trains: head (the new classifier) or full (every layer)"
    )
    min_lr: float = option(1e-6, "learning rate of the first batch")
    max_lr: float = option(1.0, "learning rate of the last batch")
    steps: int = option(100, "batches to run, the LR growing exponentially between min and max")


# fit options that do not apply to a range test: it never resumes, and writes a plot, not a report
_NOT_FIT = ("data", "resume", "report")
LRFindCommand = combine(
    "LRFindCommand",
    LRFindOptions,
    FitConfig,
    skip=_NOT_FIT,
    helps={"out": "folder for lr_find.json and lr_find.png"},
)
OPTIONS = {"lr-find": LRFindCommand}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "lr-find",
        LRFindCommand,
        help="learning-rate range test (Lightning's LR finder)",
        description="Grow the LR exponentially over a few batches and suggest one from the loss "
        "curve. Takes graft fit's options (model, image size, batch size, ...); writes lr_find.png "
        "to --out.",
    )
    p.add_argument("data", help="image folder (class sub-folders or train/val/test) or CSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.train.cli_options import options_from_args
    from graft.train.lr_finder import lr_find

    config = FitConfig.load(args.config) if args.config else None
    own = options_from_args(args, LRFindOptions)
    defaults = LRFindOptions()
    result = lr_find(args.data, phase=own.get("phase", defaults.phase),
                     min_lr=own.get("min_lr", defaults.min_lr),
                     max_lr=own.get("max_lr", defaults.max_lr),
                     steps=own.get("steps", defaults.steps),
                     config=config, **options_from_args(args))  # fmt: skip
    shown = (
        f"{result.suggestion:.3g}"
        if result.suggestion is not None
        else "none (loss curve too flat or noisy)"
    )
    data = {"suggestion": result.suggestion, "phase": result.phase, "plot": str(result.plot)}
    emit(
        args, data, f"suggested learning rate ({result.phase} phase): {shown}\nplot: {result.plot}"
    )
    return 0
