"""``graft probe FEATURES|DATA --clf ...``: a classical classifier on frozen features, saved as a bundle.

Example:
    $ graft probe data/pets --model efficientnet_lite0 --image-size 128 --clf logreg --out runs/probe
    $ graft probe feats/pets --clf svm-rbf --pca 128 --out runs/svm
    $ graft probe feats/maps --clf svm-rbf --pca auto --max-memory 2GB --json
    $ graft predict runs/probe some/images/
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

from graft.commands._common import add_parser, emit, note, save_config
from graft.commands.extract import (
    MODEL_HELP,
    WEIGHTS_HELP,
    add_hardware_deprecations,
    hardware_of,
)
from graft.options import (
    ACCELERATOR_HELP,
    DEVICES_HELP,
    add_deprecated,
    kwargs_of,
    option,
    resolve,
)

CLASSIFIERS = ["logreg", "linear-svm", "svm-rbf", "knn", "ridge"]


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


@dataclass
class ProbeOptions:
    """Options of ``graft probe`` (and keyword arguments of :func:`graft.probe`)."""

    data: str = option(
        None, "feature store folder, or ImageFolder / split folder / CSV of images", positional=True
    )
    clf: Literal["logreg", "linear-svm", "svm-rbf", "knn", "ridge"] = option(
        "logreg", "classifier; its hyperparameters are chosen by cross-validation"
    )
    model: str = option("efficientnet_lite0", MODEL_HELP + "; image data only")
    weights: str = option("pretrained", WEIGHTS_HELP + "; image data only")
    layer: str | None = option(
        None,
        "stage index, module name, or 'auto' (the last stage or the one before it, whichever has "
        "the better cross-validated accuracy) (image data)",
        default_text="the last stage",
    )
    pool: Literal["avg", "max", "none"] = option("avg", "pooling of feature maps (image data)")
    image_size: int | None = option(
        None, "input size in pixels (image data)", default_text="the model's"
    )
    pca: float | str | None = option(
        None,
        "PCA before the classifier: components (>= 1), a variance fraction (< 1), or 'auto' "
        "(99% of the variance when the features have more dims than there are training images, "
        "e.g. --pool none maps; else none)",
        default_text="no PCA",
        type=_pca,
    )
    cv: int = option(
        5,
        "stratified cross-validation folds for the hyperparameters (at most 3 above 5,000 images)",
    )
    val_split: float | None = option(
        None,
        "fraction of train held out as val when there is no val/ or test/",
        default_text="0.2 then",
    )
    seed: int = option(0, "random seed of the held-out split and of the classifier")
    out: str | None = option(
        None,
        "bundle folder for graft predict / evaluate (with config.yaml)",
        default_text="not saved",
    )
    features_out: str | None = option(
        None, "also keep the extracted features in this folder (a feature store)",
        default_text="not kept",
    )  # fmt: skip
    batch_size: int = option(64, "images per batch when extracting")
    workers: int | None = option(
        None, "image decoding processes", default_text="cores - 1, at most 4"
    )
    max_memory: str | None = option(
        None,
        "memory the svm-rbf kernel may hold, e.g. 2GB; an exact n x n kernel above it is replaced "
        "by a Nystroem approximation + ridge classifier (said in the output)",
        default_text="a quarter of the RAM available at start",
    )
    accelerator: str = option("auto", ACCELERATOR_HELP)
    devices: str = option("1", DEVICES_HELP + "; several extract in parallel")
    progress: bool = option(
        True, "show progress bars (on stderr): the extraction of image data, the search"
    )


OPTIONS = {"probe": ProbeOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "probe",
        ProbeOptions,
        help="fit a scikit-learn probe on frozen features and save it as a bundle",
        description="Standardise, optionally reduce with PCA, and fit a classifier whose "
        "hyperparameters are chosen by stratified cross-validation. Input: a feature store (graft "
        "extract --out) or an image dataset (features are extracted first). Reports CV, "
        "validation and test accuracy.",
    )
    add_hardware_deprecations(p)
    add_deprecated(p, "--random-init", "weights", "--weights none", value="none")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.features import probe

    opts = resolve(args, ProbeOptions, **hardware_of(args, {}))
    kwargs = kwargs_of(opts, skip=("data", "progress"))
    result = probe(opts.data, progress=opts.progress and not args.quiet, **kwargs)
    data = {"clf": opts.clf, "classes": result.classes, **result.metrics}
    data["params"] = data["best_params"]  # the key before 0.x; kept for scripts that read it
    data["bundle"] = str(result.bundle) if result.bundle else None
    emit(args, data, result.summary())
    if result.bundle:
        save_config(opts, result.bundle)
        note(f"bundle: {result.bundle}")
    return 0
