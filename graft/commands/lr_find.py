"""``graft lr-find DATA``: learning-rate range test; prints the suggestion, saves a plot.

Example:
    $ graft lr-find data/pets --phase full --out runs/lr
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from graft.commands._common import add_parser, emit, save_config
from graft.options import combine, kwargs_of, option
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
_NOT_FIT = ("data", "resume", "report", "ensemble_models")
LRFindCommand = combine(
    "LRFindCommand",
    LRFindOptions,
    FitConfig,
    skip=_NOT_FIT,
    helps={"out": "folder for lr_find.json, lr_find.png and config.yaml"},
)
OPTIONS = {"lr-find": LRFindCommand}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "lr-find",
        LRFindCommand,
        help="learning-rate range test (Lightning's LR finder)",
        description="Grow the LR exponentially over a few batches and suggest one from the loss "
        "curve. Takes graft fit's options (model, image size, batch size, ...) and --config reads "
        "a graft fit config.yaml too; writes lr_find.json, lr_find.png and config.yaml to --out.",
    )
    p.add_argument("data", help="image folder (class sub-folders or train/val/test) or CSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.config import from_dict
    from graft.distributed import is_rank_zero
    from graft.train.cli_options import options_from_args
    from graft.train.lr_finder import lr_find
    from graft.train.resolved import resolve_config

    own_yaml, fit_yaml = _read_config(args.config)
    own = from_dict(LRFindOptions, {**own_yaml, **options_from_args(args, LRFindOptions)})
    cfg = resolve_config(args.data, fit_yaml, {**options_from_args(args), "resume": False})
    result = lr_find(cfg.data, config=cfg, **kwargs_of(own))
    if is_rank_zero():  # several processes (--devices N): one writer
        fit_fields = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_FIT}
        save_config(LRFindCommand(**kwargs_of(own), **fit_fields), cfg.out)
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


def _read_config(path: str | None) -> tuple[dict[str, Any], FitConfig | None]:
    """``--config`` YAML: lr-find's own keys, and the fit options (``graft fit``'s config.yaml or
    an earlier ``graft lr-find``'s: both are read)."""
    if not path:
        return {}, None
    from graft.config import from_dict, read_yaml

    data = read_yaml(path)
    from_dict(LRFindCommand, {k: v for k, v in data.items() if k not in _NOT_FIT}, where=str(path))
    own = {f.name for f in dataclasses.fields(LRFindOptions)}
    fit = from_dict(FitConfig, {k: v for k, v in data.items() if k not in own}, where=str(path))
    return {k: v for k, v in data.items() if k in own}, fit
