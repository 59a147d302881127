"""``AuditResult``: every finding of an audit, with its evidence, and the suggested clean split.

Example:
    >>> r = graft.audit("data/pets", out="audit/pets")  # doctest: +SKIP
    >>> r.counts()  # doctest: +SKIP
    {'images': 3680, 'corrupt': 1, 'exact_groups': 12, 'near_groups': 30, 'leaks': 4, ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


@dataclass
class Group:
    """Images that are copies (``exact``: same bytes) or near copies (``near``) of each other."""

    kind: str
    members: list[int]
    splits: list[str]
    cosine_min: float = 1.0
    hash_bits_max: int = 0
    pixel_corr_min: float = 1.0

    @property
    def leak(self) -> bool:
        """True when the group crosses train / val / test."""
        return len(set(self.splits)) > 1


@dataclass
class LabelIssue:
    """A likely mislabelled image: the given class, the suggested one and the evidence."""

    index: int
    given: int
    suggested: int
    self_confidence: float
    suggested_probability: float


@dataclass
class Outlier:
    """An image far from all others: mean cosine distance to its nearest neighbours."""

    index: int
    score: float


@dataclass
class AuditResult:
    """What :func:`graft.audit` found (indices refer to ``files``)."""

    files: list[str]
    labels: np.ndarray
    splits: list[str]
    classes: list[str]
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    exact_groups: list[Group] = field(default_factory=list)
    near_groups: list[Group] = field(default_factory=list)
    label_issues: list[LabelIssue] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    outlier_threshold: float = 0.0
    drop: dict[int, str] = field(default_factory=dict)  # index -> why it is left out of clean.csv
    seconds: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    out: str | None = None

    @property
    def leaks(self) -> list[Group]:
        """Exact and near groups that cross splits (near groups never repeat an exact one)."""
        return [g for g in self.exact_groups + self.near_groups if g.leak]

    def counts(self) -> dict[str, int]:
        """How many of each finding (images, corrupt files, groups, leaks, issues, drops)."""
        return {
            "images": len(self.files),
            "corrupt": len(self.corrupt),
            "exact_groups": len(self.exact_groups),
            "exact_extra_copies": sum(len(g.members) - 1 for g in self.exact_groups),
            "near_groups": len(self.near_groups),
            "leaks": len(self.leaks),
            "label_issues": len(self.label_issues),
            "outliers": len(self.outliers),
            "dropped": len(self.drop),
            "kept": sum(1 for i, s in enumerate(self.splits) if s != "test" and i not in self.drop),
        }

    def clean_samples(self) -> list[tuple[str, str, str]]:
        """``(absolute path, class, split)`` of the train/val images the audit suggests keeping."""
        return [
            (os.path.abspath(f), self.classes[int(y)], s)
            for i, (f, y, s) in enumerate(zip(self.files, self.labels, self.splits, strict=True))
            if s != "test" and i not in self.drop
        ]

    def to_dict(self) -> dict[str, Any]:
        """Every finding with paths, splits, scores and evidence (the content of ``audit.json``)."""
        return {
            "format": "graft-audit",
            "format_version": 1,
            "counts": self.counts(),
            "classes": list(self.classes),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "corrupt": [{"path": p, "reason": r} for p, r in self.corrupt],
            "leaks": [self._group(g) for g in self.leaks],
            "exact_duplicates": [self._group(g) for g in _leaks_first(self.exact_groups)],
            "near_duplicates": [self._group(g) for g in _leaks_first(self.near_groups)],
            "label_issues": [self._issue(x) for x in self.label_issues],
            "outliers": [self._outlier(o) for o in self.outliers],
            "outlier_threshold": round(self.outlier_threshold, 6),
            "dropped": [{"path": self.files[i], "why": w} for i, w in sorted(self.drop.items())],
            "config": self.config,
        }

    def _member(self, i: int) -> dict[str, Any]:
        return {
            "path": self.files[i],
            "split": self.splits[i],
            "label": self.classes[self.labels[i]],
        }

    def _group(self, g: Group) -> dict[str, Any]:
        return {
            "kind": g.kind,
            "leak": g.leak,
            "splits": sorted(set(g.splits), key=SPLIT_ORDER.get),
            "cosine_min": round(g.cosine_min, 6),
            "hash_bits_max": g.hash_bits_max,
            "pixel_corr_min": round(g.pixel_corr_min, 6),
            "members": [self._member(i) for i in g.members],
        }

    def _issue(self, x: LabelIssue) -> dict[str, Any]:
        return {
            **self._member(x.index),
            "suggested": self.classes[x.suggested],
            "self_confidence": round(x.self_confidence, 6),
            "suggested_probability": round(x.suggested_probability, 6),
        }

    def _outlier(self, o: Outlier) -> dict[str, Any]:
        return {**self._member(o.index), "score": round(o.score, 6)}


def _leaks_first(groups: list[Group]) -> list[Group]:
    return sorted(groups, key=lambda g: (not g.leak, g.members[0]))
