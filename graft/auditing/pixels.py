"""Pixel evidence for near duplicates: grey thumbnails, shift-tolerant neighbours, aligned correlation.

Backbone features of a re-encoded, resized or shifted copy can drift more than those of two
different pictures of one class (measured on 28 px silhouettes: JPEG q70 copies at cosine 0.88,
different animals' nearest neighbours at 0.88 too). Pixels do not: after aligning the two images,
their grey levels correlate above 0.98 while different pictures rarely do.

- ``thumbnails``: every image as 64x64 grey levels (LANCZOS), cached by file sha256.
- ``pixel_neighbours``: each image's nearest neighbours among thumbnails moved so their intensity
  centroids coincide and blurred (so a shifted copy is still a neighbour), via scikit-learn.
- ``aligned_correlation``: the Pearson correlation of two thumbnails at the best shift (up to
  ``MAX_SHIFT`` px, about 10% of the side), searched coarse to fine (16, 32, 64 px).

Example:
    >>> t = np.zeros((2, 64, 64), np.uint8); t[:, 20:40, 20:40] = 255; t[1] = np.roll(t[1], 3, 1)
    >>> float(aligned_correlation(t, np.array([[0, 1]]))[0]) > 0.99
    True
"""

from __future__ import annotations

import numpy as np

SIDE = 64
MAX_SHIFT = 6  # px at 64 px
COARSE_MIN = 0.8  # pairs below this at 16 px are not refined at 32 px
FINE_MIN = 0.9  # nor below this at 32 px at 64 px
PREFILTER = 0.9  # candidate pairs below this cosine in centred space are not aligned


def thumbnail64(image) -> np.ndarray:
    """A PIL image as ``64x64`` grey levels (uint8)."""
    from PIL import Image

    return np.asarray(image.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS), np.uint8)


def centred(thumbs: np.ndarray, side: int = 16) -> np.ndarray:
    """Thumbnails rolled so their intensity centroid is in the middle, blurred, ``side`` px, as
    zero-mean unit vectors ``(n, side*side)``: close for shifted, resized and re-encoded copies."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(thumbs, dtype=np.float32)
    n, h, w = x.shape
    mass = x.sum(axis=(1, 2)) + 1e-6
    cy = np.rint(h / 2 - (x.sum(axis=2) * np.arange(h)).sum(1) / mass).astype(int)
    cx = np.rint(w / 2 - (x.sum(axis=1) * np.arange(w)).sum(1) / mass).astype(int)
    rows = (np.arange(h)[None, :] - cy[:, None]) % h  # roll every image at once
    cols = (np.arange(w)[None, :] - cx[:, None]) % w
    x = x[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    small = _pool(gaussian_filter(x, sigma=(0, 2, 2)), h // side)
    v = small.reshape(n, -1)
    v -= v.mean(axis=1, keepdims=True)
    return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-6)


def pixel_neighbours(thumbs: np.ndarray, k: int, min_similarity: float = 0.0) -> np.ndarray:
    """``(i, j)`` pairs, ``i < j``: each image with its ``k`` nearest other images in
    :func:`centred` space whose cosine similarity there is at least ``min_similarity``."""
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    v = centred(thumbs)
    k = max(1, min(k, len(v) - 1))
    with threadpool_limits(1):
        dist, idx = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(v).kneighbors(v)
    rows = np.repeat(np.arange(len(v)), k + 1)
    cols, sim = idx.reshape(-1), 1.0 - dist.reshape(-1) ** 2 / 2  # unit vectors: cos = 1 - d^2/2
    keep = (rows != cols) & (sim >= min_similarity)
    pairs = np.stack([np.minimum(rows, cols), np.maximum(rows, cols)], axis=1)[keep]
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


def aligned_correlation(thumbs: np.ndarray, pairs: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Best Pearson correlation (over the overlap) of each pair's thumbnails over shifts up to
    about ``MAX_SHIFT`` px.

    A pyramid: every shift of up to 2 px at 16 px, then the best one refined by +-2 px at 32 px
    (pairs above ``COARSE_MIN``) and by +-1 px at 64 px (pairs above ``FINE_MIN``). Pairs sharing a shift are
    computed together, so every step is one array operation.
    """
    x = np.asarray(thumbs, dtype=np.float32)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.full(len(pairs), -1.0, dtype=np.float32)
    levels = [(_pool(x, 4), 2, 0.0), (_pool(x, 2), 2, COARSE_MIN), (x, 1, FINE_MIN)]
    for start in range(0, len(pairs), chunk):
        p = pairs[start : start + chunk]
        best = np.full(len(p), -1.0, dtype=np.float32)
        shift = np.zeros((len(p), 2), dtype=np.int64)
        for number, (level, reach, floor) in enumerate(levels):
            alive = np.flatnonzero(best >= floor) if number else np.arange(len(p))
            centre = shift[alive] * (2 if number else 0)
            for c in np.unique(centre, axis=0):
                group = alive[(centre == c).all(axis=1)]
                best[group], shift[group] = _search(level, p[group], tuple(c), reach)
        out[start : start + len(p)] = best
    return out


def _pool(x: np.ndarray, f: int) -> np.ndarray:
    n, h, w = x.shape
    return x.reshape(n, h // f, f, w // f, f).mean(axis=(2, 4)) if f > 1 else x


def _search(x: np.ndarray, pairs: np.ndarray, centre: tuple[int, int], reach: int):
    """Best correlation of ``x[i]`` with ``x[j]`` over shifts ``centre +- reach``, and the shift."""
    a, b = x[pairs[:, 0]], x[pairs[:, 1]]
    best = np.full(len(pairs), -1.0, dtype=np.float32)
    arg = np.zeros((len(pairs), 2), dtype=np.int64)
    for dy in range(centre[0] - reach, centre[0] + reach + 1):
        for dx in range(centre[1] - reach, centre[1] + reach + 1):
            c = _correlation(a, b, dy, dx)
            better = c > best
            best[better] = c[better]
            arg[better] = (dy, dx)
    return best, arg


def _correlation(a: np.ndarray, b: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Pearson correlation of the overlap of ``a[i]`` and ``b[i]`` moved by ``(dy, dx)``."""
    side = a.shape[1]
    ya, yb = slice(max(0, dy), side + min(0, dy)), slice(max(0, -dy), side + min(0, -dy))
    xa, xb = slice(max(0, dx), side + min(0, dx)), slice(max(0, -dx), side + min(0, -dx))
    u = a[:, ya, xa].reshape(len(a), -1)
    v = b[:, yb, xb].reshape(len(b), -1)
    u = u - u.mean(axis=1, keepdims=True)
    v = v - v.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", u, u) * np.einsum("ij,ij->i", v, v))
    num = np.einsum("ij,ij->i", u, v)
    return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0).astype(np.float32)
