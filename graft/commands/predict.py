"""``graft predict BUNDLE PATHS...``: top-k classes for image files, folders or globs.

Example:
    $ graft predict runs/pets/bundle photos/ 'more/*.jpg' --top-k 3 --out runs/preds
    $ graft predict runs/pets/bundle photos/ --json
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from graft.commands._common import add_parser, emit, note, out_file, save_config
from graft.commands.extract import add_hardware_deprecations, hardware_of
from graft.inference.cli_flags import BUNDLE_HELP, InferenceOptions
from graft.options import kwargs_of, option, resolve


@dataclass
class PredictOptions(InferenceOptions):
    """Options of ``graft predict`` (and keyword arguments of :func:`graft.predict`)."""

    bundle: str = option(None, BUNDLE_HELP, positional=True)
    paths: list[str] = option([], "image files, folders or globs", positional=True, nargs="+")
    top_k: int = option(5, "classes per image")
    out: str | None = option(
        None,
        "folder for predictions.csv, predictions.json and config.yaml",
        default_text="CSV on stdout",
    )


OPTIONS = {"predict": PredictOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "predict",
        PredictOptions,
        help="predict classes of images with a bundle (PyTorch, probe or ONNX)",
        description="Predict top-k classes and probabilities for image files, folders "
        "(recursive) or globs. Unreadable files are reported and skipped; the rest are predicted.",
    )
    add_hardware_deprecations(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft import distributed
    from graft.inference.prediction import predict, predictions_csv, write_predictions

    opts = resolve(args, PredictOptions, **hardware_of(args, {}))
    launched = distributed.init_from_env()  # torchrun / srun: this process is one rank
    preds = predict(opts.bundle, opts.paths, **kwargs_of(opts, skip=("bundle", "paths", "out")))
    if launched and not distributed.is_rank_zero():  # every rank has the predictions; one writes
        return 0
    path = out_file(opts.out, "predictions.csv", (".csv", ".json"))
    if path is not None:
        write_predictions(preds, path)
        if path.name == "predictions.csv":
            write_predictions(preds, path.with_suffix(".json"))
            save_config(opts, path.parent)
        note(f"{len(preds)} predictions written to {path}")
    skipped = [{"path": p, "reason": r} for p, r in preds.skipped]
    data = {"classes": preds.classes, "predictions": list(preds), "skipped": skipped}
    if args.json or path is None:
        emit(args, data, predictions_csv(preds))
    from graft.names import escape_name

    for p, reason in preds.skipped:  # names escaped: no tab, newline or ESC reaches the terminal
        print(f"skipped: {escape_name(p)} ({reason})", file=sys.stderr)
    return 0
