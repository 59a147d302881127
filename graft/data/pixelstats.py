"""Per-chunk work of :func:`graft.data.stats.dataset_stats`: decode, histogram, hash.

Pixel sums come from Pillow's C histogram (256 counts per channel), so the sums and sums of squares
are exact integers and no float array of the image is ever built. Kept free of torch so that worker
processes stay light.

Example:
    >>> part = chunk_stats(["a.png", "b.jpg"])  # doctest: +SKIP
    >>> part.pixels  # doctest: +SKIP
    2048
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageChops

from graft.data.images import ImageError, finish_image, is_grayscale_mode, open_image, read_bytes

_LEVELS = np.arange(256, dtype=np.int64)
_SQUARES = _LEVELS * _LEVELS


@dataclass
class ChunkStats:
    """Exact integer sums over the images of one chunk, plus per-image facts."""

    sums: list[int] = field(default_factory=lambda: [0, 0, 0])
    sumsq: list[int] = field(default_factory=lambda: [0, 0, 0])
    pixels: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)
    grayscale: int = 0
    hashes: list[tuple[bytes, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: ChunkStats) -> None:
        """Add ``other``'s sums and facts to this one."""
        for c in range(3):
            self.sums[c] += other.sums[c]
            self.sumsq[c] += other.sumsq[c]
        self.pixels += other.pixels
        self.sizes += other.sizes
        for mode, n in other.modes.items():
            self.modes[mode] = self.modes.get(mode, 0) + n
        self.grayscale += other.grayscale
        self.hashes += other.hashes
        self.failed += other.failed


def chunk_stats(paths: list[str]) -> ChunkStats:
    """Decode each path once and accumulate its pixel sums (RGB, gray replicated), size and hash."""
    out = ChunkStats()
    for path in paths:
        try:
            _add_image(out, path)
        except ImageError as e:
            out.failed.append((path, e.reason))
    return out


def _add_image(out: ChunkStats, path: str) -> None:
    data = read_bytes(path)
    opened = open_image(data, path)
    stored_mode = opened.mode
    img = finish_image(opened, path, mode=None)
    gray = img.mode == "L" or _equal_channels(img)
    hist = np.asarray(img.histogram(), dtype=np.int64).reshape(-1, 256)
    sums, sumsq = hist @ _LEVELS, hist @ _SQUARES
    for c in range(3):
        k = 0 if gray else c
        out.sums[c] += int(sums[k])
        out.sumsq[c] += int(sumsq[k])
    out.pixels += img.width * img.height
    out.sizes.append(img.size)
    out.modes[stored_mode] = out.modes.get(stored_mode, 0) + 1
    out.grayscale += bool(gray or is_grayscale_mode(stored_mode))
    out.hashes.append((hashlib.blake2b(data, digest_size=16).digest(), path))


def _equal_channels(img: Image.Image) -> bool:
    """True when an RGB image is gray (R == G == B everywhere)."""
    r, g, b = img.split()
    return (
        ImageChops.difference(r, g).getbbox() is None
        and ImageChops.difference(g, b).getbbox() is None
    )
