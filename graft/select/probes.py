"""Cross-validated accuracy of cheap classifiers on frozen features: a linear probe and kNN.

Both use stratified k-fold cross-validation (``k = min(folds, smallest class size)``, at least 2)
with a fixed seed, so every candidate is judged on the same splits of the same images.

- **probe**: standardised features -> multinomial logistic regression (L2, ``C=1``).
- **knn**: L2-normalised features -> k nearest neighbours (``k=min(5, ...)``) by cosine similarity.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 10)
    >>> f = np.eye(3)[y] * 4 + rng.normal(size=(30, 3))
    >>> cv_probe_accuracy(f, y) > 0.9 and cv_knn_accuracy(f, y) > 0.9
    True
"""

from __future__ import annotations

import numpy as np

from graft.errors import DataError


def _folds(labels: np.ndarray, folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(labels)[np.bincount(labels) > 0].min())
    k = min(folds, smallest)
    if k < 2:
        raise DataError(
            f"cross-validation needs at least 2 images of every class in the sample; the smallest "
            f"class has {smallest}. Raise --sample-per-class or add images."
        )
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)


def cv_probe_accuracy(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    """Mean cross-validated accuracy of a logistic-regression probe on ``features``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    scores = cross_val_score(clf, features, labels, cv=_folds(labels, folds, seed))
    return float(np.mean(scores))


def cv_knn_accuracy(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0, k: int = 5
) -> float:
    """Mean cross-validated accuracy of cosine kNN on ``features``."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    norm = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    cv = _folds(labels, folds, seed)
    train_size = len(labels) - len(labels) // cv.get_n_splits()
    clf = KNeighborsClassifier(n_neighbors=max(1, min(k, train_size - 1)), metric="cosine")
    return float(np.mean(cross_val_score(clf, norm, labels, cv=cv)))
