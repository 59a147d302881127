"""A torch ``Dataset`` over ``(path, label)`` samples that never crashes on a bad file.

A file that fails to decode at load time (it changed since the scan, or the scan ran with
``verify=False``) is logged once, recorded in :attr:`ImageDataset.failed`, and returned as ``None``;
:func:`collate_skip` drops those entries from the batch (and returns ``None`` when the whole batch
failed, which a Lightning ``training_step`` can skip by returning ``None``). With DataLoader workers,
each worker process records its own failures; the warning in the log is the reliable report.

``cache_images=True`` decodes every image once, resized so that its shorter side is ``cache_size``
pixels (never upscaled), and keeps the uint8 pixels in memory, shared with forked DataLoader workers
and with other datasets over the same files (e.g. the train set with and without augmentation).
The estimated size is checked against available memory first; when it would use more than half,
the cache is turned off with a warning.

Example:
    >>> ds = ImageDataset(splits.train, build_transforms(cfg, train=True))  # doctest: +SKIP
    >>> x, y = ds[0]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, WeightedRandomSampler, default_collate

from graft.data.images import ImageError, load_image, open_image, read_bytes
from graft.data.verify import default_workers
from graft.errors import ConfigError
from graft.log import get_logger

log = get_logger("graft.data")
CACHE_MEMORY_FRACTION = 0.5


class ImageDataset(Dataset):
    """``(path, label)`` samples -> ``(transform(image), label)``; bad files become ``None``.

    Example:
        >>> ds = ImageDataset([("a.png", 0), ("b.png", 1)], transform=None, in_chans=1)  # doctest: +SKIP
        >>> ds[0][0].mode  # doctest: +SKIP
        'L'
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        transform: Callable[[Image.Image], Any] | None = None,
        in_chans: int = 3,
        cache_images: bool = False,
        cache_size: int | None = None,
        workers: int | None = None,
    ) -> None:
        if in_chans not in (1, 3):
            raise ConfigError(f"in_chans must be 1 (grayscale) or 3 (RGB), got {in_chans}")
        self.samples = [(os.fspath(p), int(y)) for p, y in samples]
        self.transform = transform
        self.in_chans = in_chans
        self.mode = "L" if in_chans == 1 else "RGB"
        self.failed: dict[str, str] = {}
        self._cache: ImageCache | None = None
        if cache_images:
            self._cache = shared_cache(self.samples, self.mode, cache_size, workers)

    @property
    def labels(self) -> list[int]:
        return [y for _, y in self.samples]

    @property
    def cached(self) -> bool:
        """True when images are served from the in-memory cache."""
        return self._cache is not None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int] | None:
        path, label = self.samples[index]
        img = self._load(index, path)
        if img is None:
            return None
        return (self.transform(img) if self.transform else img), label

    def _load(self, index: int, path: str) -> Image.Image | None:
        if self._cache is not None and self._cache.arrays[index] is not None:
            return Image.fromarray(self._cache.arrays[index], self.mode)
        try:
            return load_image(path, self.mode)
        except ImageError as e:
            if path not in self.failed:
                log.warning("skipping unreadable image during loading: %s (%s)", path, e.reason)
            self.failed[path] = e.reason
            return None


def collate_skip(batch: list[Any]) -> Any:
    """``default_collate`` without the ``None`` entries of failed images; ``None`` if all failed."""
    kept = [item for item in batch if item is not None]
    return default_collate(kept) if kept else None


class ImageCache:
    """Decoded uint8 images, one entry per sample (``None`` for files that failed)."""

    def __init__(self, arrays: list[np.ndarray | None]) -> None:
        self.arrays = arrays


_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def shared_cache(
    samples: Sequence[tuple[str, int]],
    mode: str,
    cache_size: int | None,
    workers: int | None = None,
) -> ImageCache | None:
    """The cache for these files: datasets over the same files (e.g. train with augmentation and
    without) share one copy while any of them is alive; ``None`` when it would not fit in memory."""
    key = (tuple(p for p, _ in samples), mode, cache_size)
    cache = _SHARED.get(key)
    if cache is None:
        arrays = build_cache(samples, mode, cache_size, workers)
        if arrays is None:
            return None
        cache = ImageCache(arrays)
        _SHARED[key] = cache
    return cache


def build_cache(
    samples: Sequence[tuple[str, int]],
    mode: str,
    cache_size: int | None,
    workers: int | None = None,
) -> list[np.ndarray | None] | None:
    """Decode and resize all images into uint8 arrays, or return ``None`` when they would not fit."""
    need = estimate_cache_bytes([p for p, _ in samples], mode, cache_size)
    available = available_memory()
    if need > CACHE_MEMORY_FRACTION * available:
        log.warning(
            "not caching images: they need about %.1f GB, more than half of the %.1f GB available",
            need / 1e9,
            available / 1e9,
        )
        return None
    with ThreadPoolExecutor(workers or default_workers()) as pool:
        cache = list(
            pool.map(lambda p: _decode_for_cache(p, mode, cache_size), (p for p, _ in samples))
        )
    log.info(
        "cached %d images in memory (%.1f MB)",
        len(cache),
        sum(a.nbytes for a in cache if a is not None) / 1e6,
    )
    return cache


def cache_size_for(data_cfg: dict[str, Any]) -> int:
    """Shorter side to cache images at so the transform never upsamples: ``max(H, W) / crop_pct``.

    Example:
        >>> cache_size_for({"input_size": (3, 224, 224), "crop_pct": 0.875})
        256
    """
    height, width = data_cfg["input_size"][-2:]
    return math.ceil(max(height, width) / float(data_cfg.get("crop_pct", 1.0)))


def estimate_cache_bytes(paths: Sequence[str], mode: str, cache_size: int | None) -> int:
    """Bytes the cache would take, from the image headers (no decoding)."""
    channels = 1 if mode == "L" else 3
    total = 0
    for path in paths:
        try:
            width, height = open_image(read_bytes(path), path).size
        except ImageError:
            continue
        scale = min(1.0, cache_size / min(width, height)) if cache_size else 1.0
        total += round(width * scale) * round(height * scale) * channels
    return total


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def _decode_for_cache(path: str, mode: str, cache_size: int | None) -> np.ndarray | None:
    try:
        img = load_image(path, mode)
    except ImageError:
        return None  # reported again (and skipped) when the item is loaded
    if cache_size and min(img.size) > cache_size:
        scale = cache_size / min(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(img)


def class_counts(labels: Sequence[int], num_classes: int | None = None) -> list[int]:
    """Number of samples per label index ``0 .. num_classes - 1``.

    Example:
        >>> class_counts([0, 0, 1, 2, 2, 2])
        [2, 1, 3]
    """
    counter = Counter(int(y) for y in labels)
    n = num_classes if num_classes is not None else (max(counter) + 1 if counter else 0)
    return [counter.get(i, 0) for i in range(n)]


def class_weights(labels: Sequence[int], num_classes: int | None = None) -> torch.Tensor:
    """Loss weights ``n_samples / (n_classes * count)`` per class (scikit-learn's "balanced").

    Classes without samples get weight 0. Use as ``CrossEntropyLoss(weight=class_weights(y))``.

    Example:
        >>> class_weights([0, 0, 0, 1]).tolist()
        [0.6666666865348816, 2.0]
    """
    counts = torch.tensor(class_counts(labels, num_classes), dtype=torch.float64)
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (int(present.sum()) * counts[present])
    return weights.float()


def make_balanced_sampler(
    labels: Sequence[int], num_samples: int | None = None, seed: int | None = None
) -> WeightedRandomSampler:
    """A sampler that draws every class equally often (with replacement), ``len(labels)`` per epoch.

    Example:
        >>> sampler = make_balanced_sampler([0, 0, 0, 1], seed=0)
        >>> len(list(sampler))
        4
    """
    counts = class_counts(labels)
    weights = torch.tensor([1.0 / counts[int(y)] for y in labels], dtype=torch.double)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return WeightedRandomSampler(
        weights, num_samples or len(labels), replacement=True, generator=generator
    )
