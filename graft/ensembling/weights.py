"""Member weights chosen on a validation split: greedy forward selection on the log-loss.

The method is Caruana et al.'s ensemble selection (ICML 2004; AutoGluon's default weighting):
start from an empty multiset, and ``rounds`` times add (with replacement) the member whose
addition gives the lowest validation log-loss of the averaged probabilities; a member's weight is
the share of rounds it was picked (multiples of 1/rounds, summing to 1). Equal weights are also
scored and kept when they are at least as good, so the chosen weights never do worse on the
validation log-loss than the plain average. Log-loss (not accuracy) is the criterion: it is smooth
and uses the probabilities, so few hundred validation images are enough to separate candidates;
the accuracies are reported next to it.

Example:
    >>> import numpy as np
    >>> labels = np.array([0, 1, 1])
    >>> good = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    >>> bad = np.array([[0.4, 0.6], [0.7, 0.3], [0.6, 0.4]])
    >>> choose_weights(np.stack([good, bad]), labels).weights
    [1.0, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROUNDS = 20
EPS = 1e-12


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of ``labels`` under ``probs`` ``(N, C)``.

    Example:
        >>> round(log_loss(np.array([[0.5, 0.5]]), np.array([0])), 4)
        0.6931
    """
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, EPS, None)).mean())


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose highest probability is the label."""
    return float((probs.argmax(axis=1) == labels).mean())


@dataclass
class Selection:
    """The chosen weights and the validation numbers behind them."""

    weights: list[float]
    method: str
    val_log_loss: float
    val_acc: float
    equal: dict[str, float]
    members: list[dict[str, float]]
    rounds: int = ROUNDS
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rounds": self.rounds,
            "val_log_loss": self.val_log_loss,
            "val_acc": self.val_acc,
            "equal_weights": self.equal,
            "members": self.members,
        }


def _score(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"val_log_loss": log_loss(probs, labels), "val_acc": accuracy(probs, labels)}


def greedy_counts(member_probs: np.ndarray, labels: np.ndarray, rounds: int = ROUNDS) -> np.ndarray:
    """How often each member is picked in ``rounds`` of greedy selection with replacement."""
    counts = np.zeros(len(member_probs), dtype=np.int64)
    total = np.zeros_like(member_probs[0])
    for step in range(1, rounds + 1):
        losses = [log_loss((total + p) / step, labels) for p in member_probs]
        best = int(np.argmin(losses))  # ties: the earlier member
        counts[best] += 1
        total += member_probs[best]
    return counts


def choose_weights(member_probs: np.ndarray, labels: np.ndarray, rounds: int = ROUNDS) -> Selection:
    """Weights for ``member_probs`` ``(members, N, classes)`` on validation ``labels`` ``(N,)``.

    See the module docstring. Ties go to equal weights.
    """
    member_probs = np.asarray(member_probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    m = len(member_probs)
    equal_w = np.full(m, 1.0 / m)
    equal = _score(np.tensordot(equal_w, member_probs, axes=1), labels)
    greedy_w = greedy_counts(member_probs, labels, rounds) / rounds
    greedy = _score(np.tensordot(greedy_w, member_probs, axes=1), labels)
    members = [_score(p, labels) for p in member_probs]
    if greedy["val_log_loss"] < equal["val_log_loss"]:
        weights, method, chosen = greedy_w, "greedy-selection", greedy
    else:
        weights, method, chosen = equal_w, "equal (greedy selection was not better)", equal
    return Selection(
        [float(w) for w in weights], method, chosen["val_log_loss"], chosen["val_acc"],
        equal, members, rounds,
    )  # fmt: skip


def equal_weights(count: int) -> Selection:
    """Equal weights, used when no validation data is given."""
    nan = float("nan")
    return Selection([1.0 / count] * count, "equal (no validation data)", nan, nan, {}, [], 0)
