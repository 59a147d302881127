"""``graft evaluate BUNDLE DATA``: accuracy, balanced accuracy, per-class scores, confusion matrix.

Example:
    $ graft evaluate runs/pets/bundle data/pets --split test --out runs/pets/eval --tta
"""

from __future__ import annotations

import argparse
import sys

from graft.inference.cli_flags import add_inference_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a bundle on labelled images",
        description="Evaluate a bundle on an ImageFolder, a folder with train/val/test, or a path,label CSV. "
        "Writes metrics.json, per_class.csv, confusion_matrix.csv/.png and predictions.csv to --out, and "
        "report.html (graft report) when the bundle is inside a graft fit run folder.",
    )
    p.add_argument(
        "bundle", help="bundle folder (written by graft fit, graft probe or graft export)"
    )
    p.add_argument(
        "data", help="ImageFolder, folder with test/ (and train/, val/), or CSV of path,label"
    )
    p.add_argument(
        "--split",
        default="test",
        choices=["test", "val", "train", "all"],
        help="split to evaluate (default test; an ImageFolder without split folders is evaluated whole)",
    )
    p.add_argument("--out", help="folder for the report files (default: print only)")
    p.add_argument("--top-k", type=int, default=5, help="also report top-k accuracy (default 5)")
    add_inference_flags(p)
    p.add_argument(
        "--no-report",
        action="store_true",
        help="do not write report.html (written to --out when the bundle is in a graft fit run folder)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.inference.evaluation import evaluate

    result = evaluate(
        args.bundle,
        args.data,
        split=args.split,
        tta=args.tta,
        out=args.out,
        top_k=args.top_k,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        report=not args.no_report,
    )
    print(result.summary())
    for row in result.metrics["per_class"]:
        print(
            f"  {row['class']:<20} precision {row['precision']:.3f}  recall {row['recall']:.3f}  f1 {row['f1']:.3f}  n={row['support']}"
        )
    if result.out:
        print(f"report written to {result.out}", file=sys.stderr)
    for path, reason in result.skipped[:20]:
        print(f"skipped: {path} ({reason})", file=sys.stderr)
    return 0
