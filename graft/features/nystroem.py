"""The kernel probe above the memory budget: Nystroem RBF features + a ridge classifier.

An exact kernel probe holds an ``n x n`` Gram matrix (20,000 rows: 4.8 GB with libsvm's float64
copy). :class:`NystroemRidge` instead maps every row to ``m`` kernel features, its RBF kernel
against ``m`` landmark rows sampled by scikit-learn's ``Nystroem`` and whitened by the landmarks'
own kernel (``m x m``), so that ``Z Z^T`` approximates the full kernel; a ``RidgeClassifier`` is then
fitted on ``Z``. Memory is ``O(n m)``. Kernels against the landmarks are BLAS products in float32
(:func:`graft.features.kernels.rbf_kernel`).

:func:`ridge_path_scores` scores a whole ``alpha`` grid on one fold from one eigendecomposition of
``Z^T Z``, so the CV search costs about one fit per fold.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (40, 5)), rng.normal(3, 1, (40, 5))]; y = np.r_[[0] * 40, [1] * 40]
    >>> NystroemRidge(n_components=20).fit(X, y).score(X, y) > 0.95
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import RidgeClassifier

from graft.features.kernels import DTYPES, rbf_kernel, resolve_gamma

TRANSFORM_ROWS = 2048  # rows per block of kernel features


class NystroemRidge(ClassifierMixin, BaseEstimator):
    """RBF kernel features from ``n_components`` landmarks (``Nystroem``), then ``RidgeClassifier``.

    ``gamma``: ``"scale"``, ``"auto"`` or a number (as ``SVC``'s); ``alpha``: ridge penalty;
    ``seed`` picks the landmarks. :meth:`fit_features` fits the ridge on features already made by
    :meth:`transform` (the CV search makes them once).

    Fitted attributes: ``nystroem_`` (``components_``, ``normalization_``), ``ridge_``,
    ``classes_``, ``_gamma``.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        gamma: str | float = "scale",
        n_components: int = 2000,
        seed: int = 0,
        dtype: str = "float32",
    ) -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.n_components = n_components
        self.seed = seed
        self.dtype = dtype

    def fit(self, X: Any, y: Any) -> NystroemRidge:
        """Sample the landmarks, map ``X`` to kernel features, fit the ridge; returns self."""
        X = np.asarray(X, dtype=DTYPES[self.dtype])
        self.fit_map(X)
        return self.fit_features(self.transform(X), y)

    def fit_map(self, X: np.ndarray) -> NystroemRidge:
        """Only the Nystroem map: landmarks and their whitening (no labels needed)."""
        self._gamma = resolve_gamma(self.gamma, X)
        self.nystroem_ = Nystroem(
            kernel="rbf",
            gamma=self._gamma,
            n_components=min(int(self.n_components), len(X)),
            random_state=self.seed,
        ).fit(X)
        return self

    def fit_features(self, Z: np.ndarray, y: Any) -> NystroemRidge:
        """Fit the ridge classifier on kernel features ``Z = self.transform(X)``."""
        self.ridge_ = RidgeClassifier(alpha=self.alpha).fit(Z, y)
        self.classes_ = self.ridge_.classes_
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Kernel features ``rbf(X, landmarks) @ normalization.T`` (float64), in row blocks."""
        X = np.asarray(X, dtype=DTYPES[self.dtype]).reshape(len(X), -1)
        landmarks = self.nystroem_.components_
        whiten = self.nystroem_.normalization_.T
        out = np.empty((len(X), whiten.shape[1]))
        for start in range(0, len(X), TRANSFORM_ROWS):
            block = rbf_kernel(
                X[start : start + TRANSFORM_ROWS], landmarks, self._gamma, self.dtype
            )
            np.matmul(block.astype(np.float64), whiten, out=out[start : start + TRANSFORM_ROWS])
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        return self.ridge_.decision_function(self.transform(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.ridge_.predict(self.transform(X))

    def export(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Landmarks, ``coef @ normalization`` (classes x m) and intercept: scores are
        ``rbf(x, landmarks) @ coef.T + intercept`` (the whitening folded into the coefficients)."""
        coef = np.atleast_2d(self.ridge_.coef_) @ self.nystroem_.normalization_
        return self.nystroem_.components_, coef, np.atleast_1d(self.ridge_.intercept_)


def ridge_path_scores(
    Z_train: np.ndarray,
    y_train: np.ndarray,
    Z_test: np.ndarray,
    y_test: np.ndarray,
    alphas: list[float],
) -> list[float]:
    """Test accuracy of ``RidgeClassifier(alpha)`` for every alpha, from one eigendecomposition.

    With centred ``Z`` and ``Y`` (targets -1/+1 per class, as ``RidgeClassifier``'s), ridge weights
    are ``V diag(1 / (s + alpha)) V^T Z^T Y`` where ``Z^T Z = V diag(s) V^T``.
    """
    classes = np.unique(y_train)
    Y = np.where(y_train[:, None] == classes[None, :], 1.0, -1.0)
    z_mean, y_mean = Z_train.mean(axis=0), Y.mean(axis=0)
    Zc = Z_train - z_mean
    s, V = np.linalg.eigh(Zc.T @ Zc)
    projected = V.T @ (Zc.T @ (Y - y_mean))
    test = (Z_test - z_mean) @ V
    out = []
    for alpha in alphas:
        scores = test @ (projected / (np.clip(s, 0, None) + alpha)[:, None]) + y_mean
        out.append(float(np.mean(classes[np.argmax(scores, axis=1)] == y_test)))
    return out
