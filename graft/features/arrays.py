"""``Features``: extracted arrays with their file names, labels, classes and splits.

Example:
    >>> f = Features.load("out/features")  # doctest: +SKIP
    >>> f.features.shape, f.subset("train").labels[:3]  # doctest: +SKIP
    ((1200, 1280), array([0, 0, 0]))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graft.errors import DataError


@dataclass
class Features:
    """Features ``(N, D)`` (pooled) or ``(N, C, H, W)`` (maps) for ``files``, in the same order.

    ``labels`` are class indices into ``classes``; ``splits`` says per image whether it came from
    ``train``, ``val`` or ``test``; ``meta`` holds the extraction settings (model, weights, layer,
    pool, data config) and ``path`` the store folder when there is one.
    """

    features: np.ndarray
    files: list[str]
    labels: np.ndarray
    classes: list[str]
    splits: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def split_names(self) -> list[str]:
        """The splits present, in the order train, val, test."""
        return [s for s in ("train", "val", "test") if s in set(self.splits)]

    def subset(self, split: str) -> Features:
        """Only the images of ``split`` (``train``, ``val`` or ``test``)."""
        if split not in ("train", "val", "test"):
            raise DataError(f"unknown split '{split}'; valid: train, val, test.")
        keep = np.array([s == split for s in self.splits], dtype=bool)
        return Features(
            self.features[keep],
            [f for f, k in zip(self.files, keep, strict=True) if k],
            self.labels[keep],
            self.classes,
            [split] * int(keep.sum()),
            self.meta,
            self.path,
        )

    def flat(self) -> np.ndarray:
        """Features as a 2-D ``(N, D)`` matrix (spatial maps are flattened)."""
        return self.features.reshape(len(self.features), -1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Features:
        """Read a feature store written by :func:`graft.extract` (``graft extract --out``)."""
        from graft.features.store import FeatureStore

        store = FeatureStore.load(path)
        entries = store.entries
        return cls(
            features=store.read_rows([(e.shard, e.row) for e in entries]),
            files=[e.file for e in entries],
            labels=np.array([e.label for e in entries], dtype=np.int64),
            classes=store.classes,
            splits=[e.split for e in entries],
            meta=store.settings,
            path=os.fspath(store.root),
        )
