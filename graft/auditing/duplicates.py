"""Exact and near duplicates, grouped (union-find over matching pairs).

- **Exact**: the same sha256 of the file's bytes.
- **Near**: candidates are each image's ``neighbors`` nearest neighbours in feature space
  (scikit-learn ``NearestNeighbors`` in the PCA view of :mod:`graft.auditing.space`) and in pixel
  space (:func:`graft.auditing.pixels.pixel_neighbours`): no hand-written all-pairs loop. A
  candidate pair is a near duplicate when its aligned grey thumbnails correlate >= ``near_pixel``
  (re-encoded, resized, shifted copies), or when its full feature vectors have cosine >=
  ``near_cosine`` *and* its perceptual hashes are within ``hash_distance`` bits (both: two photos
  of one scene share features, two flat images share a hash).

Example:
    >>> exact_groups(["a", "b", "a", "c", "b"])
    [[0, 2], [1, 4]]
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def exact_groups(digests: list[str]) -> list[list[int]]:
    """Indices sharing a digest, groups of two or more, in order of their first member."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(digests):
        groups[d].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def normalized(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32 ``(n, d)``."""
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def neighbours(
    unit: np.ndarray, k: int, space: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, cosine distances)`` of each row's ``k`` nearest other rows (``n x k``).

    The search runs in ``space`` (default: ``unit`` itself; the audit passes the PCA view of
    :func:`graft.auditing.space.project`) with scikit-learn's chunked brute-force search; the
    distances returned, and the order, are the exact cosine distances on the full vectors.

    Example:
        >>> u = normalized(np.array([[1.0, 0], [0.9, 0.1], [0, 1.0]]))
        >>> neighbours(u, 1)[0].ravel().tolist()
        [1, 0, 1]
    """
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    n = len(unit)
    k = max(1, min(k, n - 1))
    space = unit if space is None else space
    with threadpool_limits(1):
        index = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(space)
        _, idx = index.kneighbors(space)
    idx = _drop_self(idx, k)
    dist = 1.0 - np.einsum("nd,nkd->nk", unit, unit[idx])
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index (usually first; duplicates may put it later), keep ``k``."""
    rows = np.arange(len(idx))[:, None]
    keep = idx != rows
    out = np.empty((len(idx), k), dtype=np.int64)
    for r in range(len(idx)):
        out[r] = idx[r][keep[r]][:k]
    return out


def candidate_pairs(*neighbour_lists: np.ndarray) -> np.ndarray:
    """Unique ``(i, j)`` pairs, ``i < j``, from ``(n, k)`` neighbour index arrays.

    Example:
        >>> candidate_pairs(np.array([[1], [0], [0]]), np.array([[2], [2], [1]])).tolist()
        [[0, 1], [0, 2], [1, 2]]
    """
    pairs = []
    for idx in neighbour_lists:
        rows = np.repeat(np.arange(len(idx)), idx.shape[1])
        cols = idx.reshape(-1)
        pairs.append(np.stack([np.minimum(rows, cols), np.maximum(rows, cols)], axis=1))
    both = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    both = both[both[:, 0] != both[:, 1]]
    return np.unique(both, axis=0)


def near_pairs(
    pairs: np.ndarray,
    unit: np.ndarray,
    hashes: np.ndarray,
    pixel_corr: np.ndarray,
    near_pixel: float,
    near_cosine: float,
    hash_distance: int,
) -> list[tuple[int, int, float, int, float]]:
    """``(i, j, cosine, hash bits apart, pixel correlation)`` of the candidate ``pairs`` that are
    near duplicates: aligned pixels correlate >= ``near_pixel``, or features and hashes agree
    (cosine >= ``near_cosine`` and hashes within ``hash_distance`` bits).

    Example:
        >>> u = normalized(np.eye(3)); h = np.zeros((3, 64), bool)
        >>> near_pairs(np.array([[0, 1], [1, 2]]), u, h, np.array([0.99, 0.5]), 0.985, 0.95, 8)
        [(0, 1, 0.0, 0, 0.99)]
    """
    if not len(pairs):
        return []
    i, j = pairs[:, 0], pairs[:, 1]
    cos = np.einsum("nd,nd->n", unit[i], unit[j])
    bits = np.count_nonzero(hashes[i] != hashes[j], axis=1)
    corr = np.asarray(pixel_corr)
    keep = (corr >= near_pixel) | ((cos >= near_cosine - 1e-6) & (bits <= hash_distance))
    return [
        (int(a), int(b), round(float(c), 6), int(h), round(float(p), 6))
        for a, b, c, h, p in zip(i[keep], j[keep], cos[keep], bits[keep], corr[keep], strict=True)
    ]


def group_pairs(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components (two or more members) of the graph on ``n`` nodes with edges ``pairs``.

    Example:
        >>> group_pairs(6, [(0, 3), (3, 5), (1, 2)])
        [[0, 3, 5], [1, 2]]
    """
    parent = list(range(n))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
