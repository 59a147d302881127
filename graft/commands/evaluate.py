"""``graft evaluate BUNDLE DATA``: accuracy, balanced accuracy, per-class scores, confusion matrix.

Example:
    $ graft evaluate runs/pets/bundle data/pets --split test --out runs/pets/eval --tta
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Literal

from graft.commands._common import add_parser, emit, note, save_config
from graft.commands.extract import add_hardware_deprecations, hardware_of
from graft.inference.cli_flags import BUNDLE_HELP, InferenceOptions
from graft.options import kwargs_of, option, resolve


@dataclass
class EvaluateOptions(InferenceOptions):
    """Options of ``graft evaluate`` (and keyword arguments of :func:`graft.evaluate`)."""

    bundle: str = option(None, BUNDLE_HELP, positional=True)
    data: str = option(
        None, "ImageFolder, folder with test/ (and train/, val/), or CSV of path,label",
        positional=True,
    )  # fmt: skip
    split: Literal["test", "val", "train", "all"] = option(
        "test", "split to evaluate (an ImageFolder without split folders is evaluated whole)"
    )
    out: str | None = option(
        None,
        "folder for metrics.json, per_class.csv, confusion_matrix.csv/.png, predictions.csv",
        default_text="print only",
    )
    top_k: int = option(5, "also report top-k accuracy")
    report: bool = option(
        True, "write OUT/report.html when the bundle is inside a graft fit run folder"
    )


OPTIONS = {"evaluate": EvaluateOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "evaluate",
        EvaluateOptions,
        help="evaluate a bundle on labelled images",
        description="Evaluate a bundle on an ImageFolder, a folder with train/val/test, or a "
        "path,label CSV. Writes metrics.json, per_class.csv, confusion_matrix.csv/.png, "
        "predictions.csv and config.yaml to --out, and report.html (graft report) when the bundle "
        "is inside a graft fit run folder.",
    )
    add_hardware_deprecations(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft import distributed
    from graft.inference.evaluation import evaluate

    opts = resolve(args, EvaluateOptions, **hardware_of(args, {}))
    launched = distributed.init_from_env()  # torchrun / srun: this process is one rank
    result = evaluate(opts.bundle, opts.data, **kwargs_of(opts, skip=("bundle", "data")))
    if launched and not distributed.is_rank_zero():  # every rank has the result; one reports
        return 0
    lines = [result.summary()]
    for row in result.metrics["per_class"]:
        lines.append(
            f"  {row['class']:<20} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
            f"f1 {row['f1']:.3f}  n={row['support']}"
        )
    if result.out:
        save_config(opts, result.out)
        note(f"report written to {result.out}")
    data = {"metrics": result.metrics, "out": str(result.out) if result.out else None,
            "skipped": [{"path": p, "reason": r} for p, r in result.skipped]}  # fmt: skip
    emit(args, data, "\n".join(lines))
    for path, reason in result.skipped[:20]:
        print(f"skipped: {path} ({reason})", file=sys.stderr)
    return 0
