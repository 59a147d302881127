"""Transferability scores against independent reference computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from graft.errors import DataError
from graft.select.scores import hscore, leep, logme, logme_fit, nce


def _gaussian_evidence(f: np.ndarray, t: np.ndarray, alpha: float, beta: float) -> float:
    """Per-sample log N(t; 0, I/beta + F F^T/alpha): the marginal likelihood, computed directly."""
    n = f.shape[0]
    cov = np.eye(n) / beta + f @ f.T / alpha
    return float(multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(t)) / n


def _reference_max_evidence(f: np.ndarray, t: np.ndarray) -> float:
    """Maximise the direct Gaussian evidence over (log alpha, log beta) with a generic optimiser."""
    best = -np.inf
    for start in ([0.0, 0.0], [-3.0, 2.0], [3.0, -1.0]):
        res = minimize(
            lambda p: -_gaussian_evidence(f, t, np.exp(p[0]), np.exp(p[1])),
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000},
        )
        best = max(best, -res.fun)
    return best


def _blobs(separation: float, n_per: int = 30, dim: int = 8, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    y = np.repeat(np.arange(classes), n_per)
    f = separation * centres[y] + rng.normal(size=(y.size, dim))
    return f, y


@pytest.mark.parametrize("n,d", [(12, 4), (6, 10)])  # n > D and n < D (zero eigenvalues)
def test_logme_equals_independent_maximum_of_gaussian_evidence(n: int, d: int) -> None:
    rng = np.random.default_rng(1)
    f = rng.normal(size=(n, d))
    y = np.arange(n) % 2
    fits = logme_fit(f, np.eye(2)[y])
    for fit, t in zip(fits, np.eye(2)[y].T, strict=True):
        # the closed form at the fitted precisions is exactly the Gaussian log density ...
        assert fit.evidence == pytest.approx(
            _gaussian_evidence(f, t, fit.alpha, fit.beta), abs=1e-9
        )
        # ... and the fixed point is the maximum found by a generic optimiser
        assert fit.evidence == pytest.approx(_reference_max_evidence(f, t), abs=1e-5)
    assert logme(f, y) == pytest.approx(np.mean([fit.evidence for fit in fits]))


def test_logme_closed_form_one_dimensional_case() -> None:
    # n=2, D=1, f = (1, 1), t = (1, 0): t ~ N(0, I/b + 11^T/a). With c = 1/a, v = 1/b the evidence
    # is maximised on the boundary where the component along (1,1)/sqrt2 has variance 2c + v = 1/2
    # and the orthogonal one v = 1/2 (each equals the squared projection 1/2), so v = 1/2, c -> 0
    # and L = 2 * (-1/2 log(2 pi * 1/2) - 1/2) / 2 = -(log(pi) + 1) / 2.
    f = np.array([[1.0], [1.0]])
    (fit,) = logme_fit(f, np.array([[1.0], [0.0]]))
    assert fit.evidence == pytest.approx(-(np.log(np.pi) + 1) / 2, abs=1e-3)


def test_logme_more_separable_features_score_higher() -> None:
    values = [logme(*_blobs(s)) for s in (0.0, 1.0, 3.0)]
    assert values[0] < values[1] < values[2]


def test_logme_invariant_to_label_permutation_and_row_order() -> None:
    f, y = _blobs(1.5)
    perm = np.random.default_rng(3).permutation(y.size)
    relabel = np.array([2, 0, 1])[y]
    assert logme(f, y) == pytest.approx(logme(f[perm], y[perm]), rel=1e-9)
    assert logme(f, y) == pytest.approx(logme(f, relabel), rel=1e-9)


def test_leep_reference_and_ordering() -> None:
    theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
    y = np.array([0, 0, 1, 1])
    # by hand: P(y|z) = [[.85, .15], [.15, .85]]; eep = .78, .71, .78, .71
    assert leep(theta, y) == pytest.approx((np.log(0.78) + np.log(0.71)) / 2)
    uninformative = np.full((4, 2), 0.5)
    assert leep(uninformative, y) == pytest.approx(np.log(0.5))
    assert leep(theta, y) > leep(uninformative, y)


def test_nce_reference_and_extremes() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    assert nce(perfect, y) == pytest.approx(0.0)
    constant = np.array([[0.9, 0.1]] * 4)
    assert nce(constant, y) == pytest.approx(-np.log(2))


def test_hscore_reference_and_shrinkage() -> None:
    f, y = _blobs(2.0, dim=4)
    fc = f - f.mean(axis=0)
    means = np.stack([fc[y == c].mean(axis=0) for c in range(3)])[y]
    ref = np.trace(np.linalg.inv(np.cov(fc.T, bias=True)) @ np.cov(means.T, bias=True))
    assert hscore(f, y, shrinkage=False) == pytest.approx(ref, rel=1e-9)
    # shrunk covariance (1 - a) S + a mu I, with a from Ledoit-Wolf's formula; close to ref when n >> D
    from sklearn.covariance import ledoit_wolf_shrinkage

    s = np.cov(fc.T, bias=True)
    a = ledoit_wolf_shrinkage(fc, assume_centered=True)
    shrunk = (1 - a) * s + a * np.trace(s) / s.shape[0] * np.eye(s.shape[0])
    ref_shrunk = np.trace(np.linalg.inv(shrunk) @ np.cov(means.T, bias=True))
    assert hscore(f, y) == pytest.approx(ref_shrunk, rel=1e-9)
    assert hscore(f, y) == pytest.approx(ref, rel=0.1)
    # more separable -> higher; stays finite with D > n thanks to shrinkage
    assert hscore(*_blobs(0.0)) < hscore(*_blobs(3.0))
    wide = np.random.default_rng(0).normal(size=(10, 50))
    assert np.isfinite(hscore(wide, np.arange(10) % 2))


def test_scores_reject_bad_input_with_clear_messages() -> None:
    with pytest.raises(DataError, match="one row per label"):
        logme(np.zeros((4, 2)), np.array([0, 1, 0]))
    with pytest.raises(DataError, match="at least 2 classes"):
        logme(np.ones((3, 2)), np.array([0, 0, 0]))
    with pytest.raises(DataError, match="softmax"):
        leep(np.array([[2.0, -1.0], [0.5, 0.5]]), np.array([0, 1]))
    with pytest.raises(DataError, match="NaN"):
        hscore(np.array([[np.nan], [1.0]]), np.array([0, 1]))


def test_hscore_low_rank_path_matches_the_dense_ledoit_wolf_reference() -> None:
    from sklearn.covariance import LedoitWolf
    from sklearn.covariance import ledoit_wolf_shrinkage as sk_shrinkage

    from graft.select.scores import ledoit_wolf_shrinkage

    rng = np.random.default_rng(1)
    y = np.arange(40) % 4
    f = rng.normal(size=(40, 300)) * rng.uniform(0.2, 3.0, size=300)
    f[:, :6] += 2.0 * y[:, None]  # n < D: hscore takes the n x n (Woodbury) path
    fc = f - f.mean(axis=0)
    assert ledoit_wolf_shrinkage(fc)[0] == pytest.approx(sk_shrinkage(fc, assume_centered=True))
    cov = LedoitWolf(assume_centered=True).fit(fc).covariance_
    g = np.stack([fc[y == c].mean(axis=0) for c in range(4)])[y]
    ref = np.trace(np.linalg.inv(cov) @ (g.T @ g / 40))
    assert hscore(f, y) == pytest.approx(ref, rel=1e-8)
