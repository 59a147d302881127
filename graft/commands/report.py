"""``graft report RUN_DIR``: one self-contained HTML page for a training run.

Example:
    $ graft report runs/pets
    $ graft report runs/pets --out runs/pets-report --gradcam 12 --mistakes 24 --eval runs/pets/eval
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from graft.commands._common import add_parser, emit, note, out_file, save_config
from graft.options import option, resolve


@dataclass
class ReportOptions:
    """Options of ``graft report`` (and keyword arguments of :func:`graft.write_report`)."""

    run_dir: str = option(
        None, "run folder written by graft fit (its --out)", positional=True, metavar="RUN_DIR"
    )
    out: str | None = option(
        None,
        "folder for report.html (and config.yaml unless it is RUN_DIR)",
        default_text="RUN_DIR",
    )
    gradcam: int = option(8, "images with a Grad-CAM overlay (0: none)")
    mistakes: int = option(12, "most confident mistakes shown")
    evaluation: str | None = option(
        None,
        "a `graft evaluate --out` folder to take predictions from",
        default_text="the newest one inside RUN_DIR, else predictions on the validation split",
        flag="--eval",
    )
    max_images: int = option(
        256, "validation images predicted when there are no evaluation outputs"
    )


OPTIONS = {"report": ReportOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "report",
        ReportOptions,
        help="HTML report of a run: curves, confusion matrix, mistakes, Grad-CAM, dataset, config",
        description="Write one self-contained HTML file, OUT/report.html, for a `graft fit` run "
        "folder: training curves (loss, accuracy, learning rate per parameter group, unfreezing "
        "events), confusion matrix, per-class scores, the most confident mistakes, Grad-CAM "
        "overlays, dataset statistics and the resolved config. Predictions come from `graft "
        "evaluate` outputs found in the run folder (or --eval), else from the bundle on the "
        "validation split (on the CPU).",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.report import write_report

    opts = resolve(args, ReportOptions)
    path = write_report(
        opts.run_dir,
        out_file(opts.out, "report.html", (".html", ".htm")),
        gradcam=opts.gradcam,
        mistakes=opts.mistakes,
        evaluation=opts.evaluation,
        max_images=opts.max_images,
    )
    if opts.out and Path(path).name == "report.html" and not _same(Path(path).parent, opts.run_dir):
        save_config(opts, Path(path).parent)  # never over the run folder's own config.yaml (fit's)
    note(f"report written to {path}")
    emit(args, {"report": str(path)}, str(path))
    return 0


def _same(a: Path | str, b: Path | str) -> bool:
    return Path(a).resolve() == Path(b).resolve()
