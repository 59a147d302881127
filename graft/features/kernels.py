"""RBF kernels at BLAS speed: Gram matrices by one matrix product, float32, in row chunks.

libsvm (scikit-learn's ``SVC(kernel="rbf")``) computes each kernel entry on its own, without BLAS;
on wide features (a Lite0 map flattened: 11,520 dims) that is two orders of magnitude slower than
``||a||^2 + ||b||^2 - 2 a.b`` for all pairs at once. :class:`GramSVC` is scikit-learn's RBF SVC fed
with such a precomputed kernel: same dual problem, same ``decision_function`` within float tolerance
(float32 kernels; exact to rounding with ``dtype="float64"``), and the same fitted arrays
(``support_vectors_``, ``dual_coef_``, ``intercept_``, ``n_support_``, ``_gamma``) that
:func:`graft.features.probe_params.export_probe` stores in a bundle.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 5)), rng.normal(3, 1, (30, 5))]; y = np.r_[[0] * 30, [1] * 30]
    >>> GramSVC(C=1.0).fit(X, y).score(X, y) > 0.95
    True
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import SVC

from graft.errors import ConfigError

DTYPES = {"float32": np.float32, "float64": np.float64}
CHUNK_BYTES = 64 << 20  # temporaries of one row block (norms, products) stay below this
PREDICT_ROWS = 1024  # test rows per decision block (a block holds rows x n_train float64)
LIBSVM_CACHE_BYTES = 200 << 20  # SVC's default cache_size (MB)
DEFAULT_MEMORY_FRACTION = 0.25  # --max-memory default: this share of the RAM available at start


def squared_distances(
    A: np.ndarray, B: np.ndarray | None = None, dtype: str = "float32"
) -> np.ndarray:
    """All squared euclidean distances ``(len(A), len(B))`` by matrix products, in row chunks.

    ``B=None`` means ``A`` against itself (the diagonal is exactly 0). Norms are accumulated in
    float64; negative values from rounding are clipped to 0.

    Example:
        >>> squared_distances(np.array([[0.0, 0], [3, 4]]))
        array([[ 0., 25.],
               [25.,  0.]], dtype=float32)
    """
    kind = _dtype(dtype)
    A = np.asarray(A, dtype=kind)
    same = B is None
    B = A if same else np.asarray(B, dtype=kind)
    a2 = np.einsum("ij,ij->i", A, A, dtype=np.float64).astype(kind)
    b2 = a2 if same else np.einsum("ij,ij->i", B, B, dtype=np.float64).astype(kind)
    out = np.empty((len(A), len(B)), dtype=kind)
    rows = max(1, CHUNK_BYTES // max(1, out.itemsize * len(B)))
    for start in range(0, len(A), rows):
        block = out[start : start + rows]
        np.matmul(A[start : start + rows], B.T, out=block)
        block *= -2
        block += a2[start : start + rows, None]
        block += b2[None, :]
        np.maximum(block, 0, out=block)
    if same:
        np.fill_diagonal(out, 0)
    return out


def rbf_from_distances(d2: np.ndarray, gamma: float, inplace: bool = False) -> np.ndarray:
    """``exp(-gamma * d2)``, written over ``d2`` when ``inplace`` (saves one n x n buffer)."""
    out = d2 if inplace else np.empty_like(d2)
    np.multiply(d2, -gamma, out=out)
    return np.exp(out, out=out)


def rbf_kernel(
    A: np.ndarray, B: np.ndarray | None = None, gamma: float = 1.0, dtype: str = "float32"
) -> np.ndarray:
    """The RBF kernel ``exp(-gamma ||a - b||^2)`` of all pairs, computed with BLAS."""
    return rbf_from_distances(squared_distances(A, B, dtype), gamma, inplace=True)


def resolve_gamma(gamma: str | float, X: np.ndarray) -> float:
    """scikit-learn's meaning: ``"scale"`` = 1 / (n_features * X.var()), ``"auto"`` = 1 / n_features."""
    if gamma == "scale":
        var = _variance(X)
        return 1.0 / (X.shape[1] * var) if var != 0 else 1.0
    if gamma == "auto":
        return 1.0 / X.shape[1]
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0:
        raise ConfigError(f"gamma must be 'scale', 'auto' or a positive number; got {gamma!r}.")
    return float(gamma)


def _variance(X: np.ndarray, block_bytes: int = 16 << 20) -> float:
    """``X.var()`` over all entries in float64, in row blocks (no float64 copy of ``X``)."""
    rows = max(1, block_bytes // (8 * max(1, X.shape[1])))
    mean = sum(float(X[i : i + rows].sum(dtype=np.float64)) for i in range(0, len(X), rows))
    mean /= X.size
    total = 0.0
    for i in range(0, len(X), rows):
        block = X[i : i + rows].astype(np.float64)
        block -= mean
        total += float(np.einsum("ij,ij->", block, block))
    return total / X.size


def exact_kernel_bytes(n: int, dtype: str = "float32", n_gammas: int = 1) -> int:
    """Peak memory of an exact kernel probe on ``n`` training rows.

    One ``n x n`` Gram in ``dtype`` kept for the whole search (plus the distances it is made from
    when several gammas are searched), the float64 copy libsvm needs for the final fit (fold
    matrices are smaller), and libsvm's kernel cache.
    """
    itemsize = _dtype(dtype)().itemsize
    distances = n * n * itemsize if n_gammas > 1 else 0
    return n * n * (itemsize + 8) + distances + LIBSVM_CACHE_BYTES


def nystroem_bytes(n: int, m: int, d: int) -> int:
    """Peak memory of the Nystroem path: ``n x m`` float64 kernel features three times (a fold's
    rows and their centred copy), ``m x m`` Gram/eigenvectors, float32 landmarks, one row block."""
    return 8 * (3 * n * m + 3 * m * m) + 4 * m * d + CHUNK_BYTES


def nystroem_components(n: int, d: int, budget: int, most: int = 2000, least: int = 100) -> int:
    """Most landmarks (at most ``most``, at most ``n``) whose Nystroem path fits ``budget`` bytes."""
    m = min(most, n)
    while m > least and nystroem_bytes(n, m, d) > budget:
        m = int(m * 0.8)
    return max(min(least, n), m)


def default_max_memory() -> int:
    """``DEFAULT_MEMORY_FRACTION`` of the RAM available now (of all RAM where that is unknown)."""
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page = os.sysconf("SC_PAGE_SIZE")
        return int(pages * page * DEFAULT_MEMORY_FRACTION)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return int(8 * (1 << 30) * DEFAULT_MEMORY_FRACTION)


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(value: str | int | float | None) -> int:
    """``"2GB"``, ``"512M"``, ``"1.5g"`` or a number of bytes -> bytes; ``None``/``"auto"`` -> default.

    Example:
        >>> parse_bytes("1.5GB") == int(1.5 * 2**30)
        True
    """
    if value is None or value == "auto":
        return default_max_memory()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtKMGT]?)(i?[bB])?\s*", str(value))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"max_memory must be a size such as '2GB', '512MB' or a number of bytes; got {value!r}."
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


class GramSVC(ClassifierMixin, BaseEstimator):
    """scikit-learn's RBF ``SVC`` with its kernel computed by BLAS (``SVC(kernel="precomputed")``).

    ``C``, ``gamma`` (``"scale"``, ``"auto"`` or a number) and ``break_ties`` mean what they mean
    for ``SVC``; ``dtype`` is the precision of the kernel computation. :meth:`fit_kernel` fits from
    an already computed training kernel (the CV search reuses one Gram matrix for every fold).

    Fitted attributes (as ``SVC``'s): ``classes_``, ``support_``, ``support_vectors_``,
    ``dual_coef_``, ``intercept_``, ``n_support_``, ``_gamma``.
    """

    def __init__(
        self,
        C: float = 1.0,
        gamma: str | float = "scale",
        break_ties: bool = True,
        dtype: str = "float32",
    ) -> None:
        self.C = C
        self.gamma = gamma
        self.break_ties = break_ties
        self.dtype = dtype

    def fit(self, X: Any, y: Any) -> GramSVC:
        """Compute the training kernel with BLAS and solve the SVM dual on it; returns self."""
        X = np.asarray(X, dtype=_dtype(self.dtype))
        gamma = resolve_gamma(self.gamma, X)
        return self.fit_kernel(rbf_kernel(X, None, gamma, self.dtype), X, y, gamma)

    def fit_kernel(self, K: np.ndarray, X: np.ndarray, y: Any, gamma: float) -> GramSVC:
        """Fit from the training kernel ``K = rbf(X, X)`` (any float dtype); keeps X's support rows."""
        svc = SVC(kernel="precomputed", C=self.C, break_ties=self.break_ties)
        svc.fit(np.asarray(K, dtype=np.float64), y)
        self.svc_ = svc
        self.classes_ = svc.classes_
        self.support_ = svc.support_
        self.support_vectors_ = np.asarray(X)[svc.support_]
        self.dual_coef_ = svc.dual_coef_
        self.intercept_ = svc.intercept_
        self.n_support_ = svc.n_support_
        self._gamma = float(gamma)
        self.n_train_ = K.shape[0]
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """SVC's decision values; the kernel against the support vectors only, in row blocks."""
        X = np.asarray(X, dtype=_dtype(self.dtype)).reshape(len(X), -1)
        parts = []
        for start in range(0, len(X), PREDICT_ROWS):
            block = np.zeros((len(X[start : start + PREDICT_ROWS]), self.n_train_))
            block[:, self.support_] = rbf_kernel(
                X[start : start + PREDICT_ROWS], self.support_vectors_, self._gamma, self.dtype
            )
            parts.append(self.svc_.decision_function(block))
        return np.concatenate(parts) if parts else np.empty((0, len(self.classes_)))

    def predict(self, X: Any) -> np.ndarray:
        """Classes by SVC's rule (with ``break_ties``: argmax of the one-vs-rest decision)."""
        dec = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(dec > 0).astype(int)]
        if self.break_ties:
            return self.classes_[np.argmax(dec, axis=1)]
        return self._vote(X)

    def _vote(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=_dtype(self.dtype)).reshape(len(X), -1)
        block = np.zeros((len(X), self.n_train_))
        block[:, self.support_] = rbf_kernel(X, self.support_vectors_, self._gamma, self.dtype)
        return self.svc_.predict(block)


def _dtype(name: str) -> type:
    if name not in DTYPES:
        raise ConfigError(f"kernel dtype must be one of {sorted(DTYPES)}; got {name!r}.")
    return DTYPES[name]
