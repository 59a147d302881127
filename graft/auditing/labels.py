"""Likely label errors by confident learning (Northcutt, Jiang & Chuang, JAIR 2021).

Given out-of-fold predicted probabilities ``P`` (``n x K``) and the given labels ``y``:

1. **Per-class thresholds** ``t_j = mean(P[i, j] for i with y_i = j)``: the average confidence the
   model has in class ``j`` on the images labelled ``j``.
2. **Confident joint** ``C[i][j]``: the number of images labelled ``i`` whose probability for ``j``
   reaches ``t_j`` (when several classes reach their threshold, the most probable one; when none
   does, the image is not counted).
3. **Label issues**: ``confident-learning`` flags every image in an off-diagonal cell of ``C``;
   ``prune-by-noise-rate`` calibrates ``C`` (rows sum to the class counts) and, per off-diagonal cell
   ``(i, j)``, flags the ``round(C_cal[i][j])`` images labelled ``i`` with the largest margin
   ``P[:, j] - P[:, i]`` (the paper's "prune by noise rate").
4. **Ranking** by self-confidence ``P[i, y_i]``: the lower, the more likely the label is wrong.

The audit's ``P`` is the mean of two out-of-sample estimates that err in different ways: a
cross-validated linear probe (:func:`out_of_fold_probabilities`) and the vote of each image's
nearest neighbours, itself left out (:func:`neighbour_probabilities`). On digits with 5% of the
labels flipped the mean lifts the top-k precision from about 0.7 to about 0.8 (see
``docs/benchmarks/audit.md``).

Written from the paper (cleanlab, the reference implementation, is AGPL-3.0).

Example:
    >>> P = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1]])
    >>> y = np.array([0, 0, 1, 1, 1])
    >>> find_label_issues(P, y, method="confident-learning").tolist()
    [4]
"""

from __future__ import annotations

import numpy as np

from graft.errors import ConfigError, DataError, raise_unknown

METHODS = ("confident-learning", "prune-by-noise-rate")
EPS = 1e-6  # a probability equal to its threshold counts as reaching it


def class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``t_j``: the mean probability of class ``j`` over the images labelled ``j`` (1.0 if none).

    Example:
        >>> class_thresholds(np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6]]), np.array([0, 0, 1]))
        array([0.8, 0.6])
    """
    probs, labels = _check(probs, labels)
    out = np.ones(probs.shape[1])
    for j in range(probs.shape[1]):
        mine = labels == j
        if mine.any():
            out[j] = probs[mine, j].mean()
    return out


def confident_guesses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image, the class it confidently belongs to (``-1``: no class reaches its threshold).

    Example:
        >>> P = np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.75, 0.25]])
        >>> confident_guesses(P, np.array([0, 0, 1, 1])).tolist()
        [0, -1, 1, -1]
    """
    probs, labels = _check(probs, labels)
    above = probs >= class_thresholds(probs, labels) - EPS
    masked = np.where(above, probs, -np.inf)
    guess = masked.argmax(axis=1)
    guess[~above.any(axis=1)] = -1
    return guess


def confident_joint(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``C[i][j]``: images labelled ``i`` confidently belonging to ``j`` (integers, ``K x K``).

    Example:
        >>> P = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1]])
        >>> confident_joint(P, np.array([0, 0, 1, 1, 1])).tolist()
        [[1, 0], [1, 2]]
    """
    probs, labels = _check(probs, labels)
    guess = confident_guesses(probs, labels)
    k = probs.shape[1]
    counted = guess >= 0
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[counted], guess[counted]), 1)
    return joint


def calibrate_joint(joint: np.ndarray, class_counts: np.ndarray) -> np.ndarray:
    """Scale each row of ``joint`` to the number of images with that label (a row with no
    confident images stays zero).

    Example:
        >>> calibrate_joint(np.array([[2, 0], [1, 2]]), np.array([2, 6])).tolist()
        [[2.0, 0.0], [2.0, 4.0]]
    """
    rows = joint.sum(axis=1, keepdims=True).astype(float)
    scale = np.divide(class_counts.reshape(-1, 1), rows, out=np.zeros_like(rows), where=rows > 0)
    return joint * scale


def find_label_issues(
    probs: np.ndarray, labels: np.ndarray, method: str = "prune-by-noise-rate"
) -> np.ndarray:
    """Indices of the likely mislabelled images, lowest self-confidence first.

    Example:
        >>> P = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.9, 0.1]])
        >>> find_label_issues(P, np.array([0, 0, 1, 1, 1])).tolist()
        [4]
    """
    if method not in METHODS:
        raise_unknown("label method", method, METHODS)
    probs, labels = _check(probs, labels)
    guess = confident_guesses(probs, labels)
    if method == "confident-learning":
        flagged = np.flatnonzero((guess >= 0) & (guess != labels))
    else:
        flagged = _prune_by_noise_rate(probs, labels, guess)
    return rank_by_self_confidence(probs, labels, flagged)


def _prune_by_noise_rate(probs: np.ndarray, labels: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Per off-diagonal cell ``(i, j)``: the ``round(C_cal[i][j])`` images labelled ``i`` with the
    largest margin ``P[:, j] - P[:, i]``, never more than the cell's own count allows."""
    k = probs.shape[1]
    counts = np.bincount(labels, minlength=k)
    joint = confident_joint(probs, labels)
    expected = np.rint(calibrate_joint(joint, counts)).astype(np.int64)
    flagged: set[int] = set()
    for i in range(k):
        mine = np.flatnonzero(labels == i)
        budget = len(mine) - 1  # never flag a whole class
        for j in range(k):
            n = int(expected[i, j])
            if i == j or n <= 0 or budget <= 0:
                continue
            n = min(n, budget)
            margin = probs[mine, j] - probs[mine, i]
            order = np.argsort(-margin, kind="stable")[:n]
            picked = [int(mine[o]) for o in order if margin[o] > 0]
            flagged.update(picked)
            budget -= len(picked)
    return np.array(sorted(flagged), dtype=np.int64)


def rank_by_self_confidence(
    probs: np.ndarray, labels: np.ndarray, indices: np.ndarray | None = None
) -> np.ndarray:
    """``indices`` (default: all) sorted by ``P[i, y_i]``, lowest first (ties: original order).

    Example:
        >>> rank_by_self_confidence(np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([0, 0])).tolist()
        [0, 1]
    """
    idx = np.arange(len(labels)) if indices is None else np.asarray(indices, dtype=np.int64)
    score = self_confidence(probs, labels)[idx]
    return idx[np.argsort(score, kind="stable")]


def self_confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``P[i, y_i]`` for every image."""
    return probs[np.arange(len(labels)), labels]


def neighbour_probabilities(
    neighbours: np.ndarray, labels: np.ndarray, classes: int, prior: float = 0.01
) -> np.ndarray:
    """Per image, the share of its nearest neighbours (``n x k`` indices, itself excluded) in each
    class, smoothed by ``prior`` pseudo-votes per class (no class gets probability 0).

    Example:
        >>> nb = np.array([[1, 2], [0, 2], [0, 1]])
        >>> neighbour_probabilities(nb, np.array([0, 0, 1]), 2, prior=0.0).tolist()
        [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]]
    """
    neighbours = np.asarray(neighbours, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if neighbours.ndim != 2 or len(neighbours) != len(labels):
        raise DataError(
            f"expected neighbour indices of shape (n, k) for {len(labels)} labels, got "
            f"{neighbours.shape}"
        )
    votes = np.zeros((len(labels), classes))
    rows = np.repeat(np.arange(len(labels)), neighbours.shape[1])
    np.add.at(votes, (rows, labels[neighbours].ravel()), 1.0)
    votes += prior
    return votes / votes.sum(axis=1, keepdims=True)


def out_of_fold_probabilities(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0, C: float = 0.03
) -> np.ndarray:
    """Probabilities for every image from a probe that never saw it (stratified ``folds``-fold).

    The probe is a multinomial logistic regression (``C``; 0.03 ranked flipped labels better than
    0.1 or 1.0 on the benchmarks) on the standardised features projected on
    their top 256 principal axes (:func:`graft.auditing.space.project`: unsupervised, so computed
    once for all folds), single-threaded BLAS. Classes with fewer images than ``folds`` lower the
    number of folds (at least 2).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = np.r_[rng.normal(0, 1, (20, 4)), rng.normal(4, 1, (20, 4))]; y = np.r_[[0] * 20, [1] * 20]
        >>> P = out_of_fold_probabilities(X, y, folds=4)
        >>> P.shape, bool((P.argmax(1) == y).mean() > 0.9)
        ((40, 2), True)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    from graft.auditing.space import project

    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if len(labels) else 0
    present = np.bincount(labels, minlength=k)[np.unique(labels)] if k else np.zeros(1, int)
    if len(present) < 2 or present.min() < 2:
        raise DataError(
            f"cross-validated probabilities need at least 2 classes of at least 2 images; got "
            f"{len(present)} class(es), the smallest with {int(present.min())}. Add images or pass "
            "a fitted bundle (--bundle)."
        )
    folds = min(int(folds), int(present.min()))
    x = project(features, seed=seed)
    probs = np.zeros((len(labels), k))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):
        for train, held in splitter.split(x, labels):
            model = LogisticRegression(C=C, max_iter=300, tol=1e-3).fit(x[train], labels[train])
            probs[np.ix_(held, model.classes_)] = model.predict_proba(x[held])
    return probs


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise DataError(
            f"expected probabilities of shape (n, classes) for {len(labels)} labels, got "
            f"{probs.shape}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ConfigError(
            f"labels must be class indices in [0, {probs.shape[1]}), got "
            f"[{labels.min()}, {labels.max()}]"
        )
    return probs, labels
