"""``graft predict BUNDLE PATHS...``: top-k classes for image files, folders or globs.

Example:
    $ graft predict runs/pets/bundle photos/ 'more/*.jpg' --top-k 3 --out preds.csv
"""

from __future__ import annotations

import argparse
import sys

from graft.inference.cli_flags import add_inference_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict classes of images with a bundle (PyTorch, probe or ONNX)",
        description="Predict top-k classes and probabilities for image files, folders (recursive) or globs. "
        "Unreadable files are reported and skipped; the rest are predicted.",
    )
    p.add_argument(
        "bundle", help="bundle folder (written by graft fit, graft probe or graft export)"
    )
    p.add_argument("paths", nargs="+", help="image files, folders or globs")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    p.add_argument(
        "--out", help="write predictions to a .csv or .json file (default: CSV on stdout)"
    )
    add_inference_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.inference.prediction import predict, predictions_csv, write_predictions

    preds = predict(
        args.bundle,
        args.paths,
        top_k=args.top_k,
        batch_size=args.batch_size,
        tta=args.tta,
        device=args.device,
        workers=args.workers,
    )
    if args.out:
        write_predictions(preds, args.out)
        print(f"{len(preds)} predictions written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(predictions_csv(preds))
    from graft.names import escape_name

    for path, reason in preds.skipped:  # names escaped: no tab, newline or ESC reaches the terminal
        print(f"skipped: {escape_name(path)} ({reason})", file=sys.stderr)
    return 0
