"""Transferability scores: how well a frozen backbone's features suit a labelled dataset, without training.

Every score takes features ``F`` (``n x D``, one row per image) or source-model probabilities
``theta`` (``n x Z``) and integer labels ``y`` (``n``, values ``0..C-1``). Higher is better for all.

- :func:`logme` -- LogME (You et al., ICML 2021): per class, the log marginal likelihood (evidence) of a
  Bayesian linear regression from ``F`` to the one-hot target, maximised over its two precisions, per
  sample, averaged over classes.
- :func:`leep` -- LEEP (Nguyen et al., ICML 2020): log expected empirical prediction from the source
  head's probabilities.
- :func:`nce` -- NCE (Tran et al., ICCV 2019): negative conditional entropy of target labels given the
  source head's hard predictions.
- :func:`hscore` -- H-score (Bao et al., ICIP 2019) with Ledoit-Wolf shrinkage of the feature covariance
  (Ibrahim et al., ICLR 2022), which keeps it stable when ``D`` is close to or above ``n``; when
  ``n < D`` it is computed through ``n x n`` Gram matrices (Woodbury), never forming the ``D x D`` inverse.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 20)
    >>> good = np.eye(3)[y] * 3 + rng.normal(size=(60, 3))
    >>> bad = rng.normal(size=(60, 3))
    >>> bool(logme(good, y) > logme(bad, y))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graft.errors import DataError

_EPS = 1e-12


@dataclass(frozen=True)
class Evidence:
    """LogME's fit for one target column: the evidence per sample and the precisions at the optimum."""

    evidence: float
    alpha: float
    beta: float
    iterations: int


def logme(
    features: np.ndarray, labels: np.ndarray, max_iter: int = 100, tol: float = 1e-6
) -> float:
    """LogME: mean over classes of the maximum per-sample log evidence of a Bayesian linear model.

    For one target column ``t`` (the one-hot indicator of a class) the model is
    ``t = F w + e`` with prior ``w ~ N(0, alpha^-1 I_D)`` and noise ``e ~ N(0, beta^-1 I_n)``, so
    ``t ~ N(0, beta^-1 I + alpha^-1 F F^T)`` and the log evidence is::

        L(alpha, beta) = D/2 log alpha + n/2 log beta - 1/2 log|A| - beta/2 ||t - F m||^2
                         - alpha/2 ||m||^2 - n/2 log(2 pi),
        A = alpha I + beta F^T F,   m = beta A^-1 F^T t.

    With the SVD ``F = U diag(s) V^T`` (``sigma = s^2``, rank ``k``) every term is a sum over ``k``
    values; ``alpha, beta`` are found by MacKay's fixed point ``gamma = sum sigma / (sigma + alpha/beta)``,
    ``alpha = gamma / ||m||^2``, ``beta = (n - gamma) / ||t - F m||^2``. The residual includes the part
    of ``t`` outside the span of ``U`` and ``log|A|`` includes the ``D - k`` zero eigenvalues, so the
    result equals the Gaussian log density above exactly (the reference implementation drops the
    latter when ``n < D``). Returns ``mean_c L_c / n``.

    Example:
        >>> import numpy as np
        >>> y = np.array([0, 0, 1, 1]); f = np.array([[1.0, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
        >>> round(logme(f, y), 3) > round(logme(f[:, ::-1][[0, 2, 1, 3]], y), 3)
        True
    """
    f, y = _check(features, labels)
    targets = np.eye(int(y.max()) + 1)[y]
    return float(np.mean([e.evidence for e in logme_fit(f, targets, max_iter, tol)]))


def logme_fit(
    features: np.ndarray, targets: np.ndarray, max_iter: int = 100, tol: float = 1e-6
) -> list[Evidence]:
    """LogME's fixed-point fit for each column of ``targets`` (``n x K``); see :func:`logme`."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps
    u, sigma = u[:, keep], s[keep] ** 2
    out = []
    for t in np.asarray(targets, dtype=np.float64).T:
        out.append(_evidence_one(u, sigma, t, n, d, max_iter, tol))
    return out


def _evidence_one(
    u: np.ndarray, sigma: np.ndarray, t: np.ndarray, n: int, d: int, max_iter: int, tol: float
) -> Evidence:
    x2 = (u.T @ t) ** 2  # squared projections of the target on the left singular vectors
    outside = max(float(t @ t - x2.sum()), 0.0)  # part of t that no weight vector can explain
    alpha, beta, it = 1.0, 1.0, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        lam = alpha / beta
        gamma = float((sigma / (sigma + lam)).sum())
        m2 = float((sigma * x2 / (sigma + lam) ** 2).sum())  # ||m||^2
        res2 = float((x2 * (lam / (sigma + lam)) ** 2).sum()) + outside  # ||t - F m||^2
        alpha = gamma / max(m2, _EPS)
        beta = max(n - gamma, _EPS) / max(res2, _EPS)
        if abs(alpha / beta - lam) <= tol * lam:
            break
    lam = alpha / beta
    m2 = float((sigma * x2 / (sigma + lam) ** 2).sum())
    res2 = float((x2 * (lam / (sigma + lam)) ** 2).sum()) + outside
    k = sigma.size
    logdet = float(np.log(alpha + beta * sigma).sum()) + (d - k) * np.log(alpha)
    ev = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - logdet / 2
        - beta / 2 * res2
        - alpha / 2 * m2
        - n / 2 * np.log(2 * np.pi)
    )
    return Evidence(float(ev / n), float(alpha), float(beta), it)


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP: ``1/n sum_i log sum_z P(y_i | z) theta_i(z)``, with ``P(y|z)`` the empirical conditional.

    ``theta`` (``n x Z``) are the source head's probabilities (e.g. ImageNet softmax);
    ``P(y, z) = 1/n sum_{i: y_i = y} theta_i(z)`` and ``P(y|z) = P(y, z) / sum_y P(y, z)``.
    It is at most 0 (a perfect expected empirical predictor).

    Example:
        >>> import numpy as np
        >>> theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
        >>> round(leep(theta, np.array([0, 0, 1, 1])), 4)
        -0.2955
    """
    theta, y = _check_probs(source_probs, labels)
    joint = np.zeros((int(y.max()) + 1, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= theta.shape[0]
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), _EPS)  # P(y|z)
    eep = np.einsum("iz,iz->i", theta, cond[y])
    return float(np.mean(np.log(np.maximum(eep, _EPS))))


def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """NCE: ``-H(Y | Z) = sum_{y,z} P(y, z) log P(y | z)``, with ``z = argmax`` of the source head.

    At most 0; 0 when each source prediction determines the target label.

    Example:
        >>> import numpy as np
        >>> theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.6, 0.4]])
        >>> round(nce(theta, np.array([0, 0, 1, 1])), 4)  # z = 0,0,1,0: H = 3/4 * H(2/3)
        -0.4774
    """
    theta, y = _check_probs(source_probs, labels)
    z = theta.argmax(axis=1)
    joint = np.zeros((int(y.max()) + 1, theta.shape[1]))
    np.add.at(joint, (y, z), 1.0)
    joint /= y.size
    pz = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / np.broadcast_to(pz, joint.shape)[nz])).sum())


def hscore(features: np.ndarray, labels: np.ndarray, shrinkage: bool = True) -> float:
    """H-score: ``tr(Cov(F)^-1 Cov(E[F | y]))``, the class separation seen through the feature covariance.

    ``Cov(E[F|y])`` is the covariance of each sample's class-mean feature. With ``shrinkage`` the
    feature covariance is the Ledoit-Wolf estimate ``(1 - a) S + a mu I`` (inverted through the Woodbury
    identity in ``n x n`` when ``n < D``); without it the
    pseudo-inverse of the sample covariance is used (unstable when ``D`` approaches ``n``).

    Example:
        >>> import numpy as np
        >>> f = np.array([[0.0], [0.0], [2.0], [2.0]]) + np.array([[0.1], [-0.1], [0.1], [-0.1]])
        >>> round(hscore(f, np.array([0, 0, 1, 1]), shrinkage=False), 4)  # 1 / (1 + 0.01)
        0.9901
    """
    f, y = _check(features, labels)
    f = f - f.mean(axis=0)
    means = np.zeros((int(y.max()) + 1, f.shape[1]))
    np.add.at(means, y, f)
    means /= np.maximum(np.bincount(y, minlength=means.shape[0]), 1)[:, None]
    g = means[y]
    n, d = f.shape
    if shrinkage:
        keep, mu = ledoit_wolf_shrinkage(f)
        if n < d and keep > 0:  # Woodbury: n x n systems instead of the d x d inverse
            return _hscore_low_rank(f, g, (1 - keep) / n, keep * mu)
        cov = (1 - keep) * (f.T @ f / n) + keep * mu * np.eye(d)
        inv = np.linalg.inv(cov)
    else:
        inv = np.linalg.pinv(f.T @ f / n, hermitian=True)
    cov_g = g.T @ g / n
    return float(np.trace(inv @ cov_g))


def ledoit_wolf_shrinkage(f: np.ndarray) -> tuple[float, float]:
    """Ledoit-Wolf shrinkage ``a`` and target scale ``mu`` for centred ``f`` (``n x D``), via n x n Gram
    matrices: the same values as ``sklearn.covariance.ledoit_wolf`` in O(n^2 D) instead of O(n D^2).

    Example:
        >>> import numpy as np
        >>> f = np.random.default_rng(0).normal(size=(20, 50)); f -= f.mean(axis=0)
        >>> a, mu = ledoit_wolf_shrinkage(f); 0 < a <= 1 and mu > 0
        True
    """
    n, d = f.shape
    sq = f**2
    trace = sq.sum() / n  # trace of the sample covariance S = f^T f / n
    mu = trace / d
    gram = f @ f.T
    fro2 = float((gram**2).sum()) / n**2  # ||S||_F^2
    beta_sum = float((sq.sum(axis=1) ** 2).sum())  # sum of (f^2)^T (f^2)
    beta = (beta_sum / n - fro2) / (d * n)
    delta = (fro2 - 2 * mu * trace + d * mu**2) / d
    beta = min(beta, delta)
    return (0.0 if beta == 0 else float(beta / delta)), float(mu)


def _hscore_low_rank(f: np.ndarray, g: np.ndarray, b: float, c: float) -> float:
    """``tr((c I + b f^T f)^-1 g^T g) / n`` by Woodbury:
    ``(c I + b F^T F)^-1 = (I - F^T (c/b I_n + F F^T)^-1 F) / c``."""
    n = f.shape[0]
    gf = g @ f.T  # n x n
    inner = np.linalg.solve(c / b * np.eye(n) + f @ f.T, gf.T)  # (c/b I + F F^T)^-1 F G^T
    return float((np.einsum("ij,ij->", g, g) - np.einsum("ij,ji->", gf, inner)) / (c * n))


def _check(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = _labels(labels)
    if f.ndim != 2 or f.shape[0] != y.size:
        raise DataError(
            f"features must be 2-D with one row per label; got shape {f.shape} for {y.size} labels. "
            "Pool feature maps to (n, D) first."
        )
    if not np.isfinite(f).all():
        raise DataError("features contain NaN or inf; check the model's output on these images.")
    return f, y


def _check_probs(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    theta, y = _check(probs, labels)
    if (theta < -1e-6).any() or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-3):
        raise DataError(
            "source probabilities must be non-negative rows summing to 1; apply softmax to logits first."
        )
    return theta, y


def _labels(labels: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DataError(
            f"labels must be a non-empty 1-D array of class indices 0..C-1; got dtype {y.dtype}, "
            f"shape {y.shape}."
        )
    if np.unique(y).size < 2:
        raise DataError("transferability needs at least 2 classes among the labels; got 1.")
    return y.astype(np.int64)


SCORES = {"logme": logme, "hscore": hscore, "leep": leep, "nce": nce}
"""Score name -> function. ``logme``/``hscore`` take features, ``leep``/``nce`` source probabilities."""
