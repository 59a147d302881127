"""``graft report RUN_DIR``: one self-contained HTML page for a training run.

Example:
    $ graft report runs/pets
    $ graft report runs/pets --out pets.html --gradcam 12 --mistakes 24 --eval runs/pets/eval
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="HTML report of a run: curves, confusion matrix, mistakes, Grad-CAM, dataset, config",
        description="Write one self-contained HTML file for a `graft fit` run folder: training curves "
        "(loss, accuracy, learning rate per parameter group, unfreezing events), confusion matrix, "
        "per-class scores, the most confident mistakes, Grad-CAM overlays, dataset statistics and "
        "the resolved config. Predictions come from `graft evaluate` outputs found in the run folder "
        "(or --eval), else from the bundle on the validation split.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by graft fit (its --out)")
    p.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    p.add_argument(
        "--gradcam", type=int, default=8, help="images with a Grad-CAM overlay (default 8; 0: none)"
    )
    p.add_argument(
        "--mistakes", type=int, default=12, help="most confident mistakes shown (default 12)"
    )
    p.add_argument(
        "--eval",
        dest="evaluation",
        help="a `graft evaluate --out` folder to take predictions from (default: the newest one "
        "inside RUN_DIR, else predictions on the validation split)",
    )
    p.add_argument(
        "--max-images",
        type=int,
        default=256,
        help="validation images predicted when there are no evaluation outputs (default 256)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.report import write_report

    path = write_report(
        args.run_dir,
        args.out,
        gradcam=args.gradcam,
        mistakes=args.mistakes,
        evaluation=args.evaluation,
        max_images=args.max_images,
    )
    print(f"report written to {path}", file=sys.stderr)
    print(path)
    return 0
