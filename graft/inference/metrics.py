"""Classification metrics from labels and probabilities (scikit-learn underneath).

Example:
    >>> import numpy as np
    >>> m = classification_metrics(np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.6, .4]]), ["a", "b"])
    >>> round(m["accuracy"], 3), m["confusion_matrix"]
    (0.667, [[1, 0], [1, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], top_k: Sequence[int] = (1, 5)
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, top-k accuracy, per-class precision/recall/F1/support, confusion.

    Labels index ``classes``; ``probs`` has one column per class. Classes absent from ``y_true``
    still get a row (support 0, scores 0).
    """
    labels = list(range(len(classes)))
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = [
        {"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "top_k_accuracy": {str(k): top_k_accuracy(y_true, probs, k) for k in sorted(set(top_k))},
        "macro_f1": float(np.mean(f1[support > 0])) if (support > 0).any() else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` most probable (ties broken by index)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == np.asarray(y_true)[:, None]).any(axis=1).mean()) if len(y_true) else 0.0
