"""``probe``: features (extracted now or read from a store) -> CV-tuned classifier -> bundle.

Example:
    >>> import graft
    >>> r = graft.probe("data/pets", clf="logreg", model="efficientnet_lite0", image_size=128,
    ...                 out="runs/pets-probe")  # doctest: +SKIP
    >>> print(r.summary())  # doctest: +SKIP
    probe logreg {'C': 0.1}: CV 0.962, val 0.958, test 0.951 (fit 2.1 s)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from graft.errors import ConfigError, DataError, GraftError, WeightsNotFoundError
from graft.features.arrays import Features
from graft.features.extraction import DEFAULT_MODEL, extract, weights_hash
from graft.features.kernels import parse_bytes
from graft.features.probe_layers import AUTO, best_layer, candidate_layers
from graft.features.probing import Probe
from graft.features.store import MANIFEST
from graft.log import get_logger

log = get_logger("graft.features")


@dataclass
class ProbeResult:
    """A fitted probe with its accuracies (None where a split is absent) and where it was saved."""

    probe: Probe
    classes: list[str]
    cv_accuracy: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    extract_seconds: float
    fit_seconds: float
    bundle: Path | None = None
    features: Features | None = field(default=None, repr=False)
    layer_choice: dict[str, Any] | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        """Accuracies, chosen parameters, wall seconds per stage and (kernel probes) the solver."""
        out = {
            "cv_accuracy": self.cv_accuracy,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "best_params": self.probe.best_params_,
            "extract_seconds": round(self.extract_seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "stage_seconds": {
                "extract": round(self.extract_seconds, 3),
                **getattr(self.probe, "stage_seconds_", {}),
            },
        }
        if self.layer_choice is not None:
            out["layer_choice"] = self.layer_choice
        if getattr(self.probe, "solver_", None):
            out["solver"] = self.probe.solver_
            out["solver_info"] = self.probe.solver_info_
        return out

    def summary(self) -> str:
        """One line: classifier, chosen hyperparameters, accuracies, time."""
        parts = [
            f"{name} {value:.3f}"
            for name, value in (
                ("CV", self.cv_accuracy),
                ("val", self.val_accuracy),
                ("test", self.test_accuracy),
            )
            if value is not None
        ]
        solver = getattr(self.probe, "solver_", None)
        how = f" [{solver}]" if solver else ""
        return (
            f"probe {self.probe.clf}{how} {self.probe.best_params_}: {', '.join(parts)} "
            f"(extract {self.extract_seconds:.1f} s, fit {self.fit_seconds:.1f} s)"
        )


def probe(
    data: Features | str | os.PathLike | Any,
    clf: str = "logreg",
    model: str | nn.Module = DEFAULT_MODEL,
    pca: int | float | str | None = None,
    cv: int = 5,
    layer: int | str | None = None,
    pool: str = "avg",
    image_size: int | None = None,
    val_split: float | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    features_out: str | os.PathLike | None = None,
    weights: str = "pretrained",
    batch_size: int = 64,
    workers: int | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    pretrained: bool | None = None,
    max_memory: int | str | None = None,
    progress: bool = True,
) -> ProbeResult:
    """Fit a probe on the train split; report CV, validation and test accuracy; save a bundle to ``out``.

    ``data`` is a :class:`Features`, a feature store folder (``graft extract --out``), or an image
    dataset (extracted now with ``model``, ``layer``, ``pool``, ``image_size``; into
    ``features_out`` when given). ``layer="auto"`` (image data) probes the last stage and the one
    before it and keeps the better by cross-validated accuracy (:mod:`graft.features.probe_layers`).
    Without val and test images, ``val_split`` (default 0.2) of the
    train images is held out, stratified. ``out`` writes a ``probe`` bundle for ``graft predict``.
    ``progress``: progress bars on stderr (the extraction of image data, the hyperparameter search).

    Example:
        >>> r = probe("feats/pets", clf="svm-rbf", pca=128, out="runs/svm")  # doctest: +SKIP
        >>> r.test_accuracy  # doctest: +SKIP
        0.93
    """
    from graft.features.extraction import resolve_weights

    parse_bytes(max_memory)  # a bad size fails now, not after the extraction
    hardware = {"accelerator": accelerator, "devices": devices}
    weights = resolve_weights(weights, pretrained)
    settings = {
        "clf": clf, "pca": pca, "cv": cv, "pool": pool, "image_size": image_size,
        "val_split": val_split, "seed": seed, "weights": weights, "batch_size": batch_size,
        "workers": workers, "hardware": hardware, "max_memory": max_memory, "progress": progress,
    }  # fmt: skip
    if layer == AUTO:
        backbone, result = _probe_auto_layer(data, model, features_out, settings)
    else:
        backbone, result = _probe_once(data, model, layer, features_out, **settings)
    if out is not None:
        result.bundle = _save(out, backbone, result.features, result)
    return result


def _probe_once(
    data, model, layer, features_out, *, clf, pca, cv, pool, image_size, val_split, seed, weights,
    batch_size, workers, hardware, max_memory, progress,
) -> tuple[nn.Module | None, ProbeResult]:  # fmt: skip
    """Features (extracted or read) and a fitted probe, not saved: (backbone or None, result)."""
    start = time.perf_counter()
    backbone, feats = _features(
        data, model, layer, pool, image_size, features_out, weights, batch_size, workers, hardware,
        progress,
    )  # fmt: skip
    extract_seconds = time.perf_counter() - start
    train, val, test = _splits(feats, val_split, seed)
    start = time.perf_counter()
    estimator = Probe(clf, pca=pca, cv=cv, seed=seed, max_memory=max_memory, progress=progress)
    fitted = estimator.fit(train.flat(), train.labels)
    fit_seconds = time.perf_counter() - start
    result = ProbeResult(
        probe=fitted,
        classes=[feats.classes[int(i)] for i in fitted.classes_],
        cv_accuracy=fitted.cv_accuracy_,
        val_accuracy=_accuracy(fitted, val),
        test_accuracy=_accuracy(fitted, test),
        extract_seconds=extract_seconds,
        fit_seconds=fit_seconds,
        features=feats,
    )
    log.info("%s", result.summary())
    return backbone, result


def _probe_auto_layer(
    data, model, features_out, settings: dict[str, Any]
) -> tuple[nn.Module, ProbeResult]:
    """``layer="auto"``: :mod:`graft.features.probe_layers` picks the stage by CV accuracy."""
    if _is_stored(data):
        raise ConfigError(
            "layer='auto' extracts features from several stages, so it needs an image folder; "
            "got stored features. Pass the image folder, or a --layer the store was made with."
        )
    if features_out is not None:
        raise ConfigError(
            "layer='auto' cannot write one feature store (it extracts several stages); drop "
            "features_out (--features-out) or pass a --layer."
        )
    backbone = (
        model
        if isinstance(model, nn.Module)
        else _backbone(str(model), settings["weights"], settings["image_size"])
    )
    backbone, result, choice = best_layer(
        candidate_layers(backbone),
        lambda layer: _probe_once(data, backbone, layer, None, **settings),
    )
    result.layer_choice = choice
    return backbone, result


def _is_stored(data) -> bool:
    """True for features already extracted: a :class:`Features` or a feature store folder."""
    return isinstance(data, Features) or (
        isinstance(data, (str, os.PathLike)) and (Path(data) / MANIFEST).exists()
    )


def _features(
    data, model, layer, pool, image_size, features_out, weights, batch_size, workers, hardware,
    progress=True,
):  # fmt: skip
    """The backbone (or None when it is only needed for saving) and the features."""
    if _is_stored(data):
        return None, data if isinstance(data, Features) else Features.load(data)
    backbone = model if isinstance(model, nn.Module) else _backbone(str(model), weights, image_size)
    feats = extract(
        data,
        model=backbone,
        layer=layer,
        pool=pool,
        image_size=image_size,
        out=features_out,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        **hardware,
    )
    return backbone, feats


def _backbone(name: str, weights: str | bool, image_size: Any = None) -> nn.Module:
    """The headless backbone ``name``; a hybrid is built for ``image_size`` (as in graft fit)."""
    from graft.models import create_model

    sized = {"image_size": image_size} if "+" in name and image_size is not None else {}
    if isinstance(weights, bool):  # pretrained=True/False
        return create_model(name, num_classes=0, pretrained=weights, **sized)
    file = None if weights in ("pretrained", "none") else weights
    return create_model(name, num_classes=0, pretrained=weights != "none", weights=file, **sized)


def _splits(feats: Features, val_split: float | None, seed: int):
    present = feats.split_names
    if "train" not in present:
        raise DataError(
            f"the features have no train images (splits: {present}); a probe trains on the train split."
        )
    train = feats.subset("train")
    val = feats.subset("val") if "val" in present else None
    test = feats.subset("test") if "test" in present else None
    if val is None and (test is None or val_split):
        train, val = _hold_out(train, val_split or 0.2, seed)
    return train, val, test


def _hold_out(train: Features, fraction: float, seed: int) -> tuple[Features, Features]:
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise DataError(f"val_split must be in (0, 1), got {fraction}.")
    idx = np.arange(len(train))
    counts = np.bincount(train.labels)
    stratify = train.labels if counts[counts > 0].min() >= 2 else None
    fit_idx, val_idx = train_test_split(
        idx, test_size=fraction, random_state=seed, stratify=stratify
    )
    return _take(train, np.sort(fit_idx), "train"), _take(train, np.sort(val_idx), "val")


def _take(f: Features, idx: np.ndarray, split: str) -> Features:
    return Features(
        f.features[idx],
        [f.files[i] for i in idx],
        f.labels[idx],
        f.classes,
        [split] * len(idx),
        f.meta,
    )


def _accuracy(fitted: Probe, part: Features | None) -> float | None:
    if part is None or len(part) == 0:
        return None
    return float(np.mean(fitted.predict(part.flat()) == part.labels))


def _save(out, backbone, feats: Features, result: ProbeResult) -> Path:
    from graft.features.probe_bundle import save_probe_bundle

    if backbone is None:
        backbone = _backbone_for(feats)
    settings = feats.meta
    return save_probe_bundle(
        out,
        backbone,
        result.probe,
        result.classes,
        settings["data_config"],
        layer=settings.get("layer"),
        pool=settings.get("pool", "avg"),
        metrics=result.metrics,
    )


def _backbone_for(feats: Features) -> nn.Module:
    """Rebuild the backbone that made stored features; its weights must hash to the stored value."""
    settings = feats.meta
    spec = settings.get("spec") or {}
    name = str(spec.get("name", settings.get("model")))
    try:
        backbone = _backbone(name, "pretrained")
    except WeightsNotFoundError as e:
        raise GraftError(
            f"cannot save a bundle: the features in {feats.path} came from '{name}', whose pretrained "
            f"weights are not available here ({str(e).splitlines()[0]}). Probe the image folder "
            "directly (graft probe DATA --model ...) instead."
        ) from e
    if weights_hash(backbone) != settings.get("weights_sha256"):
        raise GraftError(
            f"cannot save a bundle: the features in {feats.path} were made with weights that "
            f"create_model('{spec.get('name')}', pretrained=True) does not reproduce (random or "
            "custom weights). Probe the image folder directly (graft probe DATA --model ...) instead."
        )
    return backbone
