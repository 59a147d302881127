"""``graft probe FEATURES|DATA --clf ...``: a classical classifier on frozen features, saved as a bundle.

Example:
    $ graft probe data/pets --model efficientnet_lite0 --image-size 128 --clf logreg --out runs/probe
    $ graft probe feats/pets --clf svm-rbf --pca 128 --out runs/svm
    $ graft probe feats/maps --clf svm-rbf --pca auto --max-memory 2GB --json
    $ graft predict runs/probe some/images/
"""

from __future__ import annotations

import argparse
import json
import sys

CLASSIFIERS = ["logreg", "linear-svm", "svm-rbf", "knn", "ridge"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe",
        help="fit a scikit-learn probe on frozen features and save it as a bundle",
        description="Standardise, optionally reduce with PCA, and fit a classifier whose hyperparameters "
        "are chosen by stratified cross-validation. Input: a feature store (graft extract --out) or an "
        "image dataset (features are extracted first). Reports CV, validation and test accuracy.",
    )
    p.add_argument(
        "data", help="feature store folder, or ImageFolder / split folder / CSV of images"
    )
    p.add_argument(
        "--clf", default="logreg", choices=CLASSIFIERS, help="classifier (default logreg)"
    )
    p.add_argument("--model", default="efficientnet_lite0", help="backbone for image data")
    p.add_argument("--layer", default=None, help="stage index or module name (image data)")
    p.add_argument(
        "--pool", default="avg", choices=["avg", "max", "none"], help="pooling (image data)"
    )
    p.add_argument("--image-size", type=int, default=None, help="input size (image data)")
    p.add_argument(
        "--pca",
        type=_pca,
        default=None,
        help="PCA before the classifier: components (>= 1), a variance fraction (< 1), or 'auto' "
        "(99%% of the variance when the features have more dims than there are training images, "
        "e.g. --pool none maps; else none)",
    )
    p.add_argument(
        "--cv",
        type=int,
        default=5,
        help="stratified cross-validation folds for the hyperparameters "
        "(default 5; at most 3 above 5,000 images)",
    )
    p.add_argument(
        "--val-split", type=float, default=None, help="hold out this fraction of train as val"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, help="bundle folder for graft predict / evaluate")
    p.add_argument("--features-out", default=None, help="also keep the extracted features here")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument(
        "--random-init", action="store_true", help="random backbone weights (a baseline)"
    )
    p.add_argument("--workers", type=int, default=None, help="decoding processes")
    p.add_argument(
        "--max-memory",
        default=None,
        help="memory the svm-rbf kernel may hold, e.g. 2GB; an exact n x n kernel above it is "
        "replaced by a Nystroem approximation + ridge classifier (said in the output). Default: a "
        "quarter of the RAM available at start",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (accuracies, parameters, solver, wall seconds per stage) "
        "instead of the summary line",
    )
    p.set_defaults(func=run)


def _pca(value: str) -> int | float | str:
    """``auto``, a component count (>= 1) or a variance fraction (< 1)."""
    if value == "auto":
        return value
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', a number of components or a variance fraction; got {value!r}"
        ) from None
    return int(number) if number >= 1 else number


def run(args: argparse.Namespace) -> int:
    from graft.features import probe

    result = probe(
        args.data,
        clf=args.clf,
        model=args.model,
        pca=args.pca,
        cv=args.cv,
        layer=args.layer,
        pool=args.pool,
        image_size=args.image_size,
        val_split=args.val_split,
        seed=args.seed,
        out=args.out,
        features_out=args.features_out,
        batch_size=args.batch_size,
        workers=args.workers,
        pretrained=not args.random_init,
        max_memory=args.max_memory,
    )
    if args.json:
        doc = {"clf": args.clf, "classes": result.classes, **result.metrics}
        doc["bundle"] = str(result.bundle) if result.bundle else None
        print(json.dumps(doc, default=str))
    else:
        print(result.summary())
    if result.bundle:
        print(f"bundle: {result.bundle}", file=sys.stderr)
    return 0
