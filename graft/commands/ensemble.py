"""``graft ensemble BUNDLE... --out DIR``: several bundles as one ``ensemble`` bundle.

Example:
    $ graft ensemble runs/lite0/bundle runs/mnv2/bundle --data data/pets --out runs/ens
    $ graft predict runs/ens photos/
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from graft.commands._common import add_parser, emit, note, save_config
from graft.options import ACCELERATOR_HELP, kwargs_of, option, resolve


@dataclass
class EnsembleOptions:
    """Options of ``graft ensemble`` (and keyword arguments of :func:`graft.ensemble`)."""

    bundles: list[str] = option(
        [], "member bundles (PyTorch, probe or ensemble) fit on the same classes",
        positional=True, nargs="+",
    )  # fmt: skip
    out: str | None = option(None, "folder for the ensemble bundle (required: there is no default)")
    data: str | None = option(
        None,
        "labelled images (the data the members were fit on): member weights are chosen on its "
        "validation split; without it every member weighs the same",
        default_text="equal weights",
    )
    val_split: float = option(
        0.1,
        "share of train held out for choosing weights when DATA has no val/ folder; keep graft "
        "fit's value (and --seed) so that it is the split the members did not train on",
    )
    seed: int = option(0, "random seed of the validation split")
    rounds: int = option(
        20, "greedy selection rounds: weights are multiples of 1/rounds (20: steps of 0.05)"
    )
    batch_size: int = option(64, "images per batch")
    workers: int = option(0, "image decoding processes (0: in the main process)")
    accelerator: str = option("auto", ACCELERATOR_HELP)
    devices: str = option(
        "1", "the device to run on: 1, or one GPU index such as 1, (as in Lightning)"
    )


OPTIONS = {"ensemble": EnsembleOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "ensemble",
        EnsembleOptions,
        help="combine bundles into one ensemble bundle (probability averaging)",
        description="Average the class probabilities of several bundles, with member weights chosen "
        "on a validation split (greedy selection on the log-loss) when --data is given. The result "
        "is a self-contained bundle that predict, evaluate, export and serve accept.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.ensembling import ensemble

    opts = resolve(args, EnsembleOptions)
    result = ensemble(opts.bundles, **kwargs_of(opts, skip=("bundles",)))
    save_config(opts, result.path)  # next to model.json (not part of the checksummed files)
    note(f"ensemble bundle written to {result.path}")
    emit(args, result.to_dict(), result.summary())
    return 0
