"""The RBF probe's CV search: one Gram matrix for every fold and candidate, or Nystroem above budget.

:func:`fit_kernel_probe` receives preprocessed training rows (standardised, optionally PCA'd;
that preprocessing has no labels and is fitted once on all training rows, so one kernel serves the
whole search) and picks the solver from the memory budget:

- ``exact``: the squared distances of all pairs by one chunked float32 matrix product
  (:func:`graft.features.kernels.squared_distances`), ``exp(-gamma d)`` per gamma, then
  ``SVC(kernel="precomputed")`` on each fold's slice for every ``C``, and the final fit on the
  whole matrix (:class:`graft.features.kernels.GramSVC`);
- ``nystroem``: when :func:`graft.features.kernels.exact_kernel_bytes` exceeds ``max_memory``,
  ``m`` landmarks (as many as the budget allows, at most 2,000), kernel features made once, a
  ridge classifier whose ``alpha`` grid is scored from one eigendecomposition per fold
  (:class:`graft.features.nystroem.NystroemRidge`).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 5)), rng.normal(3, 1, (30, 5))]; y = np.r_[[0] * 30, [1] * 30]
    >>> fit = fit_kernel_probe(X, y, {"C": [1.0, 10.0], "gamma": ["scale"]}, folds=3, max_memory=2**30)
    >>> fit.solver, fit.cv_accuracy > 0.9
    ('exact', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from sklearn.svm import SVC

from graft.errors import raise_unknown
from graft.features.kernels import (
    GramSVC,
    exact_kernel_bytes,
    nystroem_bytes,
    nystroem_components,
    rbf_from_distances,
    resolve_gamma,
    squared_distances,
)
from graft.features.nystroem import NystroemRidge, ridge_path_scores
from graft.features.probe_progress import Stages, search_bar
from graft.log import get_logger

log = get_logger("graft.features")

SOLVERS = ("exact", "nystroem")
NYSTROEM_ALPHAS = [0.001, 0.01, 0.1, 1.0, 10.0]  # ridge penalties on kernel features
SLICE_ROWS = 1024  # rows per block when a fold's kernel slice is copied out as float64


@dataclass
class KernelFit:
    """The fitted kernel classifier, its parameters and how it was obtained."""

    model: GramSVC | NystroemRidge
    best_params: dict[str, Any]
    cv_accuracy: float | None
    solver: str
    info: dict[str, Any] = field(default_factory=dict)


def choose_solver(
    n: int, d: int, max_memory: int, n_gammas: int = 1, held: int = 0
) -> tuple[str, dict[str, Any]]:
    """``exact`` when the ``n x n`` kernel fits ``max_memory`` bytes, else ``nystroem`` (with ``m``).

    ``held``: bytes the probe already holds (its standardised copy of the features), counted too.
    """
    need = exact_kernel_bytes(n, "float32", n_gammas) + held
    info: dict[str, Any] = {
        "max_memory_bytes": int(max_memory),
        "exact_bytes": int(need),
        "features_bytes": int(held),
    }
    if need <= max_memory:
        return "exact", info
    m = nystroem_components(n, d, max_memory - held)
    info.update(n_components=m, nystroem_bytes=int(nystroem_bytes(n, m, d) + held))
    return "nystroem", info


def fit_kernel_probe(
    X: np.ndarray,
    y: np.ndarray,
    grid: dict[str, list[Any]],
    folds: int,
    max_memory: int,
    seed: int = 0,
    stages: Stages | None = None,
    progress: bool = False,
    solver: str = "auto",
) -> KernelFit:
    """CV-tuned RBF classifier on preprocessed rows ``X``; exact or Nystroem by ``max_memory``
    (``solver="auto"``), or the one named (``"exact"``, ``"nystroem"``: 2,000 landmarks at most)."""
    stages = stages if stages is not None else Stages()
    gammas = list(grid.get("gamma", ["scale"]))
    chosen, info = choose_solver(len(X), X.shape[1], max_memory, len(gammas), X.nbytes)
    if solver not in ("auto", *SOLVERS):
        raise_unknown("kernel solver", solver, ("auto", *SOLVERS))
    if solver == "nystroem" and chosen == "exact":
        info["n_components"] = nystroem_components(len(X), X.shape[1], 1 << 62)
    solver = chosen if solver == "auto" else solver
    if solver == "exact":
        fit = _exact(X, y, grid, gammas, folds, seed, stages, progress)
    elif solver == chosen:
        log.warning(
            "svm-rbf: an exact %d x %d kernel needs %.2f GB, above the memory budget of %.2f GB; "
            "using a Nystroem approximation with %d landmarks + a ridge classifier instead",
            len(X),
            len(X),
            info["exact_bytes"] / 2**30,
            max_memory / 2**30,
            info["n_components"],
        )
    if solver == "nystroem":
        fit = _nystroem(X, y, gammas, folds, seed, info["n_components"], stages, progress)
    fit.info.update(info)
    return fit


def _exact(X, y, grid, gammas, folds, seed, stages, progress) -> KernelFit:
    Cs = list(grid.get("C", [1.0]))
    candidates = list(ParameterGrid({"C": Cs, "gamma": list(range(len(gammas)))}))
    splits = _splits(X, y, folds, seed) if len(candidates) > 1 else []
    resolved = [resolve_gamma(g, X) for g in gammas]
    with stages("gram"):
        d2 = squared_distances(X)
    inplace = len(gammas) == 1
    totals: dict[tuple[float, int], float] = {}
    bar = search_bar(len(splits) * len(candidates) + 1, "svm-rbf search", progress)
    K, current = None, None
    with stages("search"):
        for g, gamma in enumerate(resolved):
            K, current = rbf_from_distances(d2, gamma, inplace=inplace), g
            for train, test in splits:
                scores = _fold_scores(K, y, train, test, Cs)
                for C, score in zip(Cs, scores, strict=True):
                    totals[(C, g)] = totals.get((C, g), 0.0) + score
                bar.update(len(Cs))
    best, cv = _best(candidates, totals, len(splits))
    with stages("final_fit"):
        if current != best["gamma"]:
            K = rbf_from_distances(d2, resolved[best["gamma"]], inplace=inplace)
        model = GramSVC(C=best["C"], gamma=gammas[best["gamma"]])
        model.fit_kernel(K, X, y, resolved[best["gamma"]])
        bar.update(1)
    bar.close()
    params = {"C": best["C"], "gamma": gammas[best["gamma"]]}
    info = {"gamma_value": resolved[best["gamma"]], "n_support": int(len(model.support_))}
    return KernelFit(model, params, cv, "exact", info)


def _nystroem(X, y, gammas, folds, seed, m, stages, progress) -> KernelFit:
    splits = _splits(X, y, folds, seed)
    candidates = list(ParameterGrid({"alpha": NYSTROEM_ALPHAS, "gamma": list(range(len(gammas)))}))
    totals: dict[tuple[float, int], float] = {}
    bar = search_bar(
        len(gammas) * (len(splits) * len(NYSTROEM_ALPHAS) + 1), "nystroem search", progress
    )
    fitted = []
    for g, gamma in enumerate(gammas):
        model = NystroemRidge(gamma=gamma, n_components=m, seed=seed)
        with stages("nystroem"):
            Z = model.fit_map(X).transform(X)
        with stages("search"):
            for train, test in splits:
                scores = ridge_path_scores(Z[train], y[train], Z[test], y[test], NYSTROEM_ALPHAS)
                for alpha, score in zip(NYSTROEM_ALPHAS, scores, strict=True):
                    totals[(alpha, g)] = totals.get((alpha, g), 0.0) + score
                bar.update(len(NYSTROEM_ALPHAS))
        fitted.append((model, Z if len(gammas) == 1 else None))
    best, cv = _best(candidates, totals, len(splits))
    model, Z = fitted[best["gamma"]]
    with stages("final_fit"):
        model.set_params(alpha=best["alpha"])
        model.fit_features(Z if Z is not None else model.transform(X), y)
        bar.update(1)
    bar.close()
    params = {"alpha": best["alpha"], "gamma": gammas[best["gamma"]]}
    info = {"gamma_value": model._gamma, "n_components": int(model.nystroem_.components_.shape[0])}
    return KernelFit(model, params, cv, "nystroem", info)


def _splits(X: np.ndarray, y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """The same stratified folds as :func:`graft.features.probe_search.path_search`."""
    if folds < 2:
        return []
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))


def _fold_scores(K: np.ndarray, y: np.ndarray, train, test, Cs: list[float]) -> list[float]:
    """Accuracy of ``SVC(kernel="precomputed", C)`` on one fold for each C, from the full kernel."""
    K_train, K_test = _submatrix(K, train, train), _submatrix(K, test, train)
    out = []
    for C in Cs:
        svc = SVC(kernel="precomputed", C=C, break_ties=True).fit(K_train, y[train])
        out.append(float(np.mean(svc.predict(K_test) == y[test])))
    return out


def _submatrix(K: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``K[rows][:, cols]`` as float64, copied in row blocks (no full-size float32 temporary)."""
    out = np.empty((len(rows), len(cols)))
    for start in range(0, len(rows), SLICE_ROWS):
        out[start : start + SLICE_ROWS] = K[rows[start : start + SLICE_ROWS]][:, cols]
    return out


def _best(
    candidates: list[dict[str, Any]], totals: dict[tuple[float, int], float], n_splits: int
) -> tuple[dict[str, Any], float | None]:
    """The candidate with the best mean fold accuracy (the first in grid order on ties)."""
    if n_splits == 0 or not totals:
        return candidates[0], None
    key = next(k for k in candidates[0] if k != "gamma")
    means = [totals[(c[key], c["gamma"])] / n_splits for c in candidates]
    best = int(np.argmax(means))
    return candidates[best], float(means[best])
