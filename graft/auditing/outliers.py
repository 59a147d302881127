"""Outliers: images far from every other image in feature space (blank, wrong domain, corrupt-looking).

The score of an image is the mean cosine distance to its ``k`` nearest neighbours, its exact copies
left out (a blank image repeated 20 times is still an outlier). An image is flagged when its score
exceeds ``Q3 + outlier_iqr * IQR`` of all scores (Tukey's fences, robust to the outliers themselves).

Example:
    >>> s = np.r_[np.full(20, 0.1), 0.9]
    >>> flag_outliers(s, 3.0).tolist()
    [20]
"""

from __future__ import annotations

import numpy as np


def knn_scores(dist: np.ndarray, idx: np.ndarray, digests: list[str]) -> np.ndarray:
    """Mean distance to the neighbours that are not byte-identical copies (``n``)."""
    digest = np.asarray(digests, dtype=object)
    same = digest[idx] == digest[:, None]
    kept = np.where(same, np.nan, dist)
    empty = np.isnan(kept).all(axis=1)
    kept[empty] = dist[empty]  # all neighbours are copies: fall back to them
    return np.nanmean(kept, axis=1)


def outlier_threshold(scores: np.ndarray, iqr_factor: float) -> float:
    """``Q3 + iqr_factor * (Q3 - Q1)`` of ``scores``.

    Example:
        >>> round(outlier_threshold(np.arange(9.0), 1.0), 6)
        10.0
    """
    q1, q3 = np.percentile(scores, [25, 75])
    return float(q3 + iqr_factor * (q3 - q1))


def flag_outliers(scores: np.ndarray, iqr_factor: float) -> np.ndarray:
    """Indices of the outliers, highest score first."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) < 4:
        return np.zeros(0, dtype=np.int64)
    over = np.flatnonzero(scores > outlier_threshold(scores, iqr_factor))
    return over[np.argsort(-scores[over], kind="stable")]
