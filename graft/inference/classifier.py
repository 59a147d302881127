"""``ImageClassifier``: fine-tuning behind scikit-learn's estimator interface.

``fit(X, y)`` takes image paths or image arrays ``(N, H, W[, C])`` (uint8, or float in [0, 1]) with
their labels, writes them as a temporary ImageFolder (links for paths, PNGs for arrays) and calls
:func:`graft.train.fit`; ``predict``, ``predict_proba`` and ``score`` run the trained bundle. All
settings are constructor arguments (no logic in ``__init__``), the fitted state lives in
trailing-underscore attributes, so ``clone``, ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``
work as with any scikit-learn classifier.

Example:
    >>> from sklearn.model_selection import cross_val_score
    >>> clf = ImageClassifier(model="efficientnet_lite0", epochs=3, image_size=96)
    >>> cross_val_score(clf, paths, labels, cv=3)  # doctest: +SKIP
    array([0.93, 0.95, 0.94])
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from graft.errors import DataError
from graft.inference.inputs import array_to_images
from graft.inference.runner import run_inference
from graft.log import get_logger

log = get_logger("graft.inference")


class ImageClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier that fine-tunes a pretrained backbone with :func:`graft.train.fit`.

    Parameters mirror ``graft fit``: ``model`` (model name), ``recipe`` (``auto``, ``head``,
    ``full``, ...), ``epochs`` / ``lr`` (``None``: the recipe's choice), ``image_size``, ``batch_size``,
    ``weights`` (``pretrained`` or ``none``), ``augment``, ``val_split``, ``seed``; ``fit_options`` is
    a dict of any other :class:`graft.train.FitConfig` option. ``out``: keep the run folder there
    (``None``: a temporary folder, removed after training). ``accelerator`` / ``devices``: where
    training and prediction run (as in Lightning). ``backbone`` and ``device`` are the old
    spellings of ``model`` and ``accelerator``/``devices``, accepted for one release.

    Fitted attributes: ``classes_``, ``bundle_`` (:class:`graft.bundle.Bundle`), ``metrics_``,
    ``run_dir_`` (``None`` when the run folder was temporary), ``n_features_in_`` is not defined
    (inputs are images).

    Example:
        >>> clf = ImageClassifier("test_efficientnet", weights="none", epochs=1, image_size=32)
        >>> clf.fit(paths, labels).predict(paths[:2])  # doctest: +SKIP
        array(['cat', 'dog'], dtype='<U3')
    """

    def __init__(
        self,
        model: str = "efficientnet_lite0",
        recipe: str = "auto",
        epochs: int | None = None,
        lr: float | None = None,
        image_size: int | None = None,
        batch_size: int = 32,
        weights: str = "pretrained",
        augment: str = "light",
        val_split: float = 0.1,
        seed: int = 0,
        fit_options: dict[str, Any] | None = None,
        out: str | None = None,
        accelerator: str = "auto",
        devices: int | str = 1,
        backbone: str | None = None,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.recipe = recipe
        self.epochs = epochs
        self.lr = lr
        self.image_size = image_size
        self.batch_size = batch_size
        self.weights = weights
        self.augment = augment
        self.val_split = val_split
        self.seed = seed
        self.fit_options = fit_options
        self.out = out
        self.accelerator = accelerator
        self.devices = devices
        self.backbone = backbone
        self.device = device

    # ------------------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Sequence[Any]) -> ImageClassifier:
        """Fine-tune on images ``X`` (paths or an array) with labels ``y``; returns ``self``."""
        from graft.bundle import load_bundle
        from graft.train import fit as train_fit

        labels = _check_labels(X, y)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise DataError(f"fit needs at least 2 classes in y, got {classes.tolist()}")
        work = Path(tempfile.mkdtemp(prefix="graft-clf-"))
        try:
            data = _write_image_folder(X, labels, work / "data")
            run = Path(self.out) if self.out else work / "run"
            result = train_fit(str(data), **self._fit_kwargs(run))
            self.bundle_ = load_bundle(result.bundle, device=self._device())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        by_name = {str(c): c for c in classes}
        self.classes_ = np.array([by_name[c] for c in self.bundle_.classes], dtype=classes.dtype)
        self.metrics_ = dict(result.metrics)
        self.run_dir_ = Path(self.out) if self.out else None
        return self

    def _model(self) -> str:
        if self.backbone is None:
            return self.model
        from graft.options import warn_deprecated

        warn_deprecated("ImageClassifier(backbone=...)", "ImageClassifier(model=...)")
        return self.backbone

    def _device(self) -> str:
        from graft.distributed import single_device

        return single_device(self.accelerator, self.devices, self.device, what="ImageClassifier")

    def _fit_kwargs(self, run: Path) -> dict[str, Any]:
        options = {
            "model": self._model(),
            "recipe": self.recipe,
            "epochs": self.epochs,
            "lr": self.lr,
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "weights": self.weights,
            "augment": self.augment,
            "val_split": self.val_split,
            "seed": self.seed,
            "out": str(run),
            "progress": False,
            "accelerator": self.accelerator,
            "devices": str(self.devices),
        }
        return {**options, **(self.fit_options or {})}

    # --------------------------------------------------------------------------- prediction

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_images, n_classes)``, columns in the order of ``classes_``."""
        check_is_fitted(self, "bundle_")
        inputs = _as_inputs(X)
        out = run_inference(self.bundle_, inputs, batch_size=max(self.batch_size, 64))
        if out.failed:
            bad = [
                (str(inputs[i]) if isinstance(inputs[i], str) else f"image {i}", r)
                for i, r in out.failed.items()
            ]
            raise DataError(
                f"{len(bad)} image(s) could not be read: {bad[:5]}. Remove or fix them and call again."
            )
        probs = np.empty_like(out.probs)
        probs[out.index] = out.probs
        return probs

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class per image, as values of ``classes_``."""
        probs = self.predict_proba(X)
        return self.classes_[probs.argmax(axis=1)]

    def __sklearn_tags__(self):  # inputs are images, not a feature matrix
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = True
        return tags


def _is_array_input(X: Any) -> bool:
    return isinstance(X, np.ndarray) and X.dtype.kind in "uif" and X.ndim in (3, 4)


def _as_inputs(X: Any) -> list[str] | list[Image.Image]:
    if _is_array_input(X):
        return array_to_images(X)
    items = list(X.ravel() if isinstance(X, np.ndarray) else X)
    if not items or not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise DataError(
            "X must be a sequence of image paths or an image array (N, H, W) / (N, H, W, C), "
            f"uint8 or float in [0, 1]; got {type(X).__name__}."
        )
    return [os.fspath(p) for p in items]


def _check_labels(X: Any, y: Sequence[Any]) -> np.ndarray:
    labels = np.asarray(y)
    n = len(X)
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"y must be one label per image: got {labels.shape} labels for {n} images")
    for name in {str(v) for v in labels}:
        if not name or name.startswith(".") or "/" in name or os.sep in name:
            raise DataError(
                f"label {name!r} cannot name a class folder; use labels without '/' or a leading '.'"
            )
    return labels


def _write_image_folder(X: Any, labels: np.ndarray, root: Path) -> Path:
    """One folder per label: symlinks (or copies) for paths, PNG files for arrays."""
    inputs = _as_inputs(X)
    for i, (item, label) in enumerate(zip(inputs, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(item, Image.Image):
            item.save(folder / f"{i:06d}.png")
            continue
        source = Path(item).resolve()
        target = folder / f"{i:06d}_{source.name}"
        try:
            target.symlink_to(source)
        except OSError:
            shutil.copyfile(source, target)
    return root
