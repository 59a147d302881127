"""A dataset's profile for the rules: size, images per class, resolution, grayscale share, detail.

Sizes and counts come from every training image; resolution, grayscale share and detail from a
stratified sample (``max_images``), so profiling a large dataset stays fast.

- ``resolution``: median shorter side in pixels.
- ``grayscale_share``: fraction of images stored as grayscale, or RGB with all channels within 2 levels.
- ``detail``: mean gradient magnitude (central differences) of the grayscale image resized to 128x128,
  intensities in 0-1. Flat images score ~0, smooth photos ~0.02-0.05, textures and scans 0.08 and up.

Example:
    >>> from graft.data import scan_dataset  # doctest: +SKIP
    >>> dataset_profile(scan_dataset("data/pets")).images_per_class_median  # doctest: +SKIP
    180.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from graft.data import Splits, load_image
from graft.data.images import ImageError, is_grayscale_mode

DETAIL_SIZE = 128


@dataclass(frozen=True)
class DatasetProfile:
    """Facts about a dataset that rules of thumb refer to."""

    n_images: int
    n_classes: int
    images_per_class_min: int
    images_per_class_median: float
    imbalance: float
    resolution: float
    grayscale_share: float
    detail: float
    profiled_images: int

    def to_dict(self) -> dict[str, Any]:
        """Plain values, also the rules' context."""
        return asdict(self)


def dataset_profile(splits: Splits, max_images: int = 200, seed: int = 0) -> DatasetProfile:
    """Profile the training split of ``splits`` (see the module docstring for each field)."""
    samples = splits.train or splits.all_samples()
    counts = np.bincount([label for _, label in samples], minlength=splits.num_classes)
    nonzero = counts[counts > 0]
    sides, gray, details = [], [], []
    for path, _ in stratified_sample(samples, max(1, max_images // max(1, len(nonzero))), seed):
        stats = image_facts(path)
        if stats is not None:
            sides.append(stats[0])
            gray.append(stats[1])
            details.append(stats[2])
    return DatasetProfile(
        n_images=len(samples),
        n_classes=splits.num_classes,
        images_per_class_min=int(nonzero.min()) if nonzero.size else 0,
        images_per_class_median=float(np.median(nonzero)) if nonzero.size else 0.0,
        imbalance=float(nonzero.max() / nonzero.min()) if nonzero.size else 1.0,
        resolution=float(np.median(sides)) if sides else 0.0,
        grayscale_share=float(np.mean(gray)) if gray else 0.0,
        detail=float(np.mean(details)) if details else 0.0,
        profiled_images=len(sides),
    )


def stratified_sample(
    samples: Sequence[tuple[str, int]], per_class: int, seed: int = 0
) -> list[tuple[str, int]]:
    """Up to ``per_class`` samples of each label, chosen at random with ``seed``, in label order.

    Example:
        >>> s = [("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 1)]
        >>> sorted(label for _, label in stratified_sample(s, 2))
        [0, 0, 1, 1]
    """
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[tuple[str, int]]] = {}
    for sample in samples:
        by_label.setdefault(int(sample[1]), []).append(sample)
    out = []
    for label in sorted(by_label):
        group = by_label[label]
        picks = rng.permutation(len(group))[:per_class]
        out.extend(group[i] for i in sorted(picks))
    return out


def image_facts(path: str) -> tuple[int, bool, float] | None:
    """(shorter side, is grayscale, detail) of one image; None when it cannot be read."""
    try:
        img = load_image(path, mode=None)
    except ImageError:
        return None
    gray = is_grayscale_mode(img.mode)
    rgb = img.convert("RGB")
    if not gray:
        arr = np.asarray(rgb, dtype=np.int16)
        gray = int(np.abs(arr - arr[..., :1]).max()) <= 2
    return min(img.size), bool(gray), detail_measure(rgb)


def detail_measure(img: Image.Image) -> float:
    """Mean gradient magnitude of ``img`` in grayscale at 128x128, intensities 0-1.

    Example:
        >>> from PIL import Image
        >>> detail_measure(Image.new("RGB", (40, 30), (90, 90, 90)))
        0.0
    """
    small = img.convert("L").resize((DETAIL_SIZE, DETAIL_SIZE), Image.Resampling.BILINEAR)
    arr = np.asarray(small, dtype=np.float64) / 255.0
    gy, gx = np.gradient(arr)
    return float(np.mean(np.hypot(gx, gy)))
