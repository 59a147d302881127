"""``graft.audit``: label errors, duplicates, train/test leaks and outliers, before any training.

The steps, each timed in ``result.seconds``:

1. **features**: :func:`graft.extract` into a feature store (``features``, default ``OUT/features``),
   so an audit after ``graft extract --out DIR`` (or a second audit) reads the stored features;
   corrupt files are listed and skipped there.
2. **duplicates**: byte-identical files (sha256 from the store), then near duplicates (aligned
   pixels, or feature cosine with perceptual hash: :mod:`graft.auditing.duplicates`,
   :mod:`graft.auditing.pixels`); groups crossing splits are leaks.
3. **labels**: out-of-fold probabilities of a cross-validated probe (or a fitted ``bundle``), then
   confident learning (:mod:`graft.auditing.labels`).
4. **outliers**: k-NN distance in feature space (:mod:`graft.auditing.outliers`).
5. **outputs** in ``out`` (:mod:`graft.auditing.outputs`).

Example:
    >>> import graft
    >>> result = graft.audit("data/pets", image_size=128, out="audit/pets")  # doctest: +SKIP
    >>> result.counts()["leaks"], result.label_issues[0].suggested  # doctest: +SKIP
    (3, 1)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from graft import config as _config
from graft.auditing import duplicates as dup
from graft.auditing.config import AuditConfig
from graft.auditing.decisions import suggest_drops
from graft.auditing.hashing import fingerprints
from graft.auditing.labels import (
    find_label_issues,
    neighbour_probabilities,
    out_of_fold_probabilities,
    self_confidence,
)
from graft.auditing.outliers import flag_outliers, knn_scores, outlier_threshold
from graft.auditing.pixels import PREFILTER, aligned_correlation, pixel_neighbours
from graft.auditing.result import AuditResult, Group, LabelIssue, Outlier
from graft.auditing.space import DIMS, SAMPLE, project
from graft.errors import ConfigError, DataError
from graft.log import get_logger

log = get_logger("graft.auditing")
PIXEL_NEIGHBOURS = 5  # candidate near duplicates per image by pixels (aligned, then compared)
FEATURE_NEIGHBOURS = 5  # and by features (cosine and perceptual hash compared)
FINGERPRINTS = "audit-fingerprints.npz"  # next to the store's manifest, keyed by file sha256


def audit(
    data: str | os.PathLike | None = None,
    *,
    config: AuditConfig | None = None,
    write: bool = True,
    **options: Any,
) -> AuditResult:
    """Audit the images of ``data`` (folder, split folders or CSV); options as in :class:`AuditConfig`.

    ``write=False`` skips the output folder (the result is returned only).

    Example:
        >>> r = audit("data/digits", model="test_efficientnet", weights="none",
        ...           out="audit/digits")  # doctest: +SKIP
        >>> sorted(p.name for p in r.out_path.iterdir())  # doctest: +SKIP
        ['audit.html', 'audit.json', 'clean.csv', 'config.yaml', 'features', 'issues.csv']
    """
    base = _config.to_dict(config) if config is not None else {}
    cfg = _config.from_dict(AuditConfig, {**base, **_old_device(options)})
    if data is not None:
        cfg.data = os.fspath(data)
    if not cfg.data:
        raise ConfigError("no data to audit: give a folder or CSV, e.g. graft audit data/pets")
    seconds: dict[str, float] = {}
    feats, digests, corrupt = _timed(seconds, "features", _features, cfg)
    result = AuditResult(
        files=list(feats.files),
        labels=np.asarray(feats.labels, dtype=np.int64),
        splits=list(feats.splits),
        classes=list(feats.classes),
        corrupt=corrupt,
        config=_config.to_dict(cfg),
        out=cfg.out if write else None,
    )
    unit = dup.normalized(feats.features)
    space = _timed(seconds, "projection", project, feats.features, DIMS, SAMPLE, cfg.seed)
    idx, dist = _timed(seconds, "neighbours", dup.neighbours, unit, cfg.neighbors, space[:, :128])
    _timed(seconds, "duplicates", _duplicates, result, cfg, digests, unit, idx, feats.path)
    probs = _timed(seconds, "probabilities", _probabilities, cfg, feats, space, idx)
    _timed(seconds, "labels", _label_issues, result, probs, cfg.label_method)
    _outliers(result, knn_scores(dist, idx, digests), cfg.outlier_iqr)
    result.drop = suggest_drops(
        result.exact_groups + result.near_groups,
        result.label_issues,
        result.outliers,
        result.splits,
        cfg.drop_labels,
        cfg.drop_outliers,
    )
    result.seconds = seconds
    if write:
        from graft.auditing.outputs import write_outputs

        _timed(seconds, "outputs", write_outputs, result, cfg)
    return result


def _timed(seconds: dict[str, float], name: str, fn: Any, *args: Any) -> Any:
    start = time.perf_counter()
    try:
        return fn(*args)
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start


# ------------------------------------------------------------------------------------- steps


def _features(cfg: AuditConfig) -> tuple[Any, list[str], list[tuple[str, str]]]:
    """Features of every readable image, their file sha256s, and the corrupt files."""
    from graft.features import extract
    from graft.features.store import FeatureStore

    store_dir = Path(cfg.features) if cfg.features else Path(cfg.out) / "features"
    _check_weights(cfg.weights)
    feats = extract(
        cfg.data,
        model=cfg.model,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        workers=cfg.workers,
        out=store_dir,
        weights=cfg.weights,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        progress=cfg.progress,
    )
    if len(feats) < 3:
        raise DataError(f"{cfg.data} has {len(feats)} readable images; an audit needs at least 3.")
    store = FeatureStore.load(store_dir)
    sha = {e.file: e.sha256 for e in store.entries}
    return feats, [sha[f] for f in feats.files], [tuple(s) for s in store.skipped]


def _old_device(options: dict[str, Any]) -> dict[str, Any]:
    """``device="cuda:1"`` (the old spelling, one release) -> ``accelerator`` / ``devices``."""
    if "device" not in options:
        return dict(options)
    from graft.options import warn_deprecated

    warn_deprecated("device=", "accelerator= and devices=")
    options = dict(options)
    kind, _, index = str(options.pop("device")).partition(":")
    options.setdefault("accelerator", kind)
    options.setdefault("devices", f"{index}," if index else "1")
    return options


def _check_weights(weights: str) -> None:
    if weights not in ("pretrained", "none") and not Path(weights).is_file():
        raise ConfigError(
            f"weights {weights!r} is neither 'pretrained', 'none' nor an existing weights file. "
            "Fix: --weights pretrained, --weights none, or the path of a .pth/.safetensors file."
        )


def _duplicates(result, cfg, digests, unit, idx, store_path) -> None:
    n = len(result.files)
    exact = dup.exact_groups(digests)
    result.exact_groups = [_group("exact", g, result.splits) for g in exact]
    cache = Path(store_path) / FINGERPRINTS if store_path else None
    thumbs, hashes = fingerprints(result.files, digests, cache, cfg.workers)
    by_pixels = pixel_neighbours(thumbs, PIXEL_NEIGHBOURS, PREFILTER)
    by_features = dup.candidate_pairs(idx[:, : min(cfg.neighbors, FEATURE_NEIGHBOURS)])
    candidates = np.unique(np.concatenate([by_features, by_pixels]), axis=0)
    corr = np.full(len(candidates), -1.0, dtype=np.float32)  # only pixel candidates are aligned
    key = candidates[:, 0] * n + candidates[:, 1]
    corr[np.isin(key, by_pixels[:, 0] * n + by_pixels[:, 1])] = aligned_correlation(
        thumbs, by_pixels
    )
    pairs = dup.near_pairs(candidates, unit, hashes, corr, cfg.near_pixel, cfg.near_cosine,
                           cfg.hash_distance)  # fmt: skip
    edges = [(i, j) for i, j, *_ in pairs] + [(g[0], m) for g in exact for m in g[1:]]
    groups = [g for g in dup.group_pairs(n, edges) if len({digests[i] for i in g}) > 1]
    where = {m: k for k, g in enumerate(groups) for m in g}  # groups of only byte-identical
    result.near_groups = [_group("near", g, result.splits) for g in groups]  # copies are exact
    for i, _, sim, bits, pixel in pairs:
        if i in where:
            group = result.near_groups[where[i]]
            group.cosine_min = min(group.cosine_min, sim)
            group.hash_bits_max = max(group.hash_bits_max, bits)
            group.pixel_corr_min = min(group.pixel_corr_min, pixel)


def _group(kind: str, members: list[int], splits: list[str]) -> Group:
    return Group(kind, list(members), [splits[i] for i in members])


def _probabilities(
    cfg: AuditConfig, feats: Any, space: np.ndarray, neighbours: np.ndarray
) -> np.ndarray:
    """A bundle's probabilities, or the mean of the cross-validated probe and the neighbours' vote
    (both out-of-sample; see :mod:`graft.auditing.labels`)."""
    if cfg.bundle:
        return _bundle_probabilities(cfg, feats)
    probe = out_of_fold_probabilities(space, feats.labels, cfg.folds, cfg.seed)
    vote = neighbour_probabilities(neighbours, feats.labels, probe.shape[1])
    return (probe + vote) / 2


def _bundle_probabilities(cfg: AuditConfig, feats: Any) -> np.ndarray:
    from graft.bundle import load_bundle
    from graft.distributed import hardware
    from graft.inference.runner import run_inference

    bundle = load_bundle(cfg.bundle, device=hardware(cfg.accelerator, cfg.devices).device(0))
    missing = sorted(set(feats.classes) - set(bundle.classes))
    if missing:
        raise DataError(
            f"bundle {cfg.bundle} does not know the classes {missing[:10]} of {cfg.data} (it has "
            f"{list(bundle.classes)[:10]}). Fix: audit with the bundle trained on this dataset."
        )
    out = run_inference(bundle, list(feats.files), batch_size=cfg.batch_size)
    column = [list(bundle.classes).index(c) for c in feats.classes]
    probs = np.full((len(feats.files), len(feats.classes)), 1.0 / len(feats.classes))
    got = np.asarray(out.probs)[:, column]
    probs[np.asarray(out.index, dtype=np.int64)] = got / np.clip(
        got.sum(1, keepdims=True), 1e-12, None
    )
    return probs


def _label_issues(result: AuditResult, probs: np.ndarray, method: str) -> None:
    flagged = find_label_issues(probs, result.labels, method)
    conf = self_confidence(probs, result.labels)
    others = probs.copy()
    others[np.arange(len(result.labels)), result.labels] = -1.0
    suggested = others.argmax(axis=1)
    result.label_issues = [
        LabelIssue(int(i), int(result.labels[i]), int(suggested[i]), float(conf[i]),
                   float(probs[i, suggested[i]]))
        for i in flagged
    ]  # fmt: skip


def _outliers(result: AuditResult, scores: np.ndarray, iqr: float) -> None:
    result.outlier_threshold = outlier_threshold(scores, iqr) if len(scores) else 0.0
    result.outliers = [Outlier(int(i), float(scores[i])) for i in flag_outliers(scores, iqr)]
