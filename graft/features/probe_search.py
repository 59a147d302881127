"""Fast stratified cross-validation for probes: shared preprocessing and warm-started paths.

``GridSearchCV`` refits the scaler (and PCA) for every candidate and starts every classifier from
scratch. :func:`path_search` instead fits the preprocessing once per fold and walks the candidates
in grid order (strong to weak regularisation) with one classifier per fold, warm-started from the
previous candidate where the classifier supports it (``LogisticRegression``): each step then needs
only a few iterations. The candidate with the best mean fold accuracy wins (the first on ties).

Example:
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 5)), rng.normal(3, 1, (30, 5))]; y = np.r_[[0] * 30, [1] * 30]
    >>> pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    >>> best, score = path_search(pipe, {"C": [0.01, 1.0]}, X, y, folds=3)
    >>> score > 0.9
    True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from sklearn.pipeline import Pipeline


def path_search(
    pipeline: Pipeline,
    grid: dict[str, list[Any]],
    X: np.ndarray,
    y: np.ndarray,
    folds: int,
    seed: int = 0,
    n_jobs: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], float]:
    """Best classifier parameters of ``grid`` for ``pipeline`` (last step ``clf``) and their CV accuracy.

    ``overrides``: classifier parameters used only while searching (e.g. a looser ``tol``).
    ``progress``: a bar with an ETA on stderr, advanced as folds finish.
    """
    from graft.features.probe_progress import search_bar

    candidates = list(ParameterGrid(grid)) or [{}]
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    bar = search_bar(folds * len(candidates), "probe search", progress)
    scores = []
    for fold in Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fold_scores)(pipeline, candidates, X, y, train, test, overrides or {})
        for train, test in splitter.split(X, y)
    ):
        scores.append(fold)
        bar.update(len(candidates))
    bar.close()
    mean = np.asarray(scores).mean(axis=0)
    best = int(np.argmax(mean))  # first maximum: grids go from strong to weak regularisation
    return candidates[best], float(mean[best])


def _fold_scores(
    pipeline: Pipeline,
    candidates: list[dict[str, Any]],
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    overrides: dict[str, Any],
) -> list[float]:
    """Accuracy of each candidate on one fold; preprocessing fitted once, classifier warm-started."""
    prep = Pipeline(clone(pipeline).steps[:-1]) if len(pipeline.steps) > 1 else None
    X_train, X_test = X[train], X[test]
    if prep is not None:
        X_train = prep.fit_transform(X_train, y[train])
        X_test = prep.transform(X_test)
    clf = clone(pipeline.steps[-1][1]).set_params(**overrides)
    if "warm_start" in clf.get_params():
        clf.set_params(warm_start=True)
    out = []
    for params in candidates:
        clf.set_params(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, y[train])
        out.append(float(np.mean(clf.predict(X_test) == y[test])))
    return out
