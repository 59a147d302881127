"""A low-dimensional view of the features: standardised, then projected on the top principal axes.

The axes come from an SVD of a seeded sample of ``sample`` rows (PCA of the sample), so the cost is
fixed however many images there are; projecting all rows is one matrix product. Both the
cross-validated probe and the neighbour search work in this space (the neighbours found are then
checked on the full vectors).

Example:
    >>> x = np.random.default_rng(0).normal(size=(500, 40)).astype(np.float32)
    >>> project(x, dims=8).shape
    (500, 8)
"""

from __future__ import annotations

import numpy as np

DIMS = 256
SAMPLE = 1024


def project(
    features: np.ndarray, dims: int = DIMS, sample: int = SAMPLE, seed: int = 0
) -> np.ndarray:
    """``(n, min(dims, d))`` float32: standardised features on the sample's top ``dims`` axes."""
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    if z.shape[1] <= dims:
        return z
    rows = np.random.default_rng(seed).permutation(len(z))[:sample]
    with threadpool_limits(1):  # see graft.features.probing: 1 BLAS thread is faster on shared CPUs
        _, _, vt = np.linalg.svd(z[np.sort(rows)], full_matrices=False)
        return z @ vt[:dims].T
