"""``Probe``: a scikit-learn classifier on frozen features, tuned by stratified cross-validation.

The pipeline is ``StandardScaler -> PCA (optional) -> classifier``; its hyperparameters come from
stratified cross-validation over a small grid per classifier (:data:`GRIDS`), with preprocessing
fitted once per fold and warm-started regularisation paths (:mod:`graft.features.probe_search`).
The RBF SVM (``svm-rbf``) is fitted at BLAS speed instead (:mod:`graft.features.kernel_search`):
its label-free preprocessing is fitted once on all training rows, one float32 Gram matrix serves
every fold, candidate and the final fit, and above ``max_memory`` a Nystroem approximation + ridge
classifier replaces the exact kernel (``solver_`` says which). ``pca="auto"`` keeps the components
holding 99% of the variance when features are wider than there are training rows.
BLAS runs single-threaded during fit and predict (``threads=1``): on a shared CPU, multi-threaded
OpenBLAS on these small matrices was measured 40x slower (a logistic-regression fit on 320 Lite0
feature vectors: 7.5 s with 2 BLAS threads under load, 0.19 s with 1). ``Probe`` is
a regular scikit-learn estimator (``fit / predict / predict_proba / decision_function / score``,
``get_params``), so ``cross_val_score`` and ``Pipeline`` work with it.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 5)), rng.normal(3, 1, (30, 5))]; y = np.r_[[0] * 30, [1] * 30]
    >>> Probe("logreg", cv=3).fit(X, y).score(X, y) > 0.95
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

from graft.errors import ConfigError, DataError, raise_unknown
from graft.features.kernel_search import fit_kernel_probe
from graft.features.kernels import parse_bytes
from graft.features.probe_progress import Stages
from graft.features.probe_search import path_search
from graft.log import get_logger

log = get_logger("graft.features")

CLASSIFIERS = ("logreg", "linear-svm", "svm-rbf", "knn", "ridge")

# looser tolerances while searching (the ranking of C barely moves); the final fit keeps the defaults,
# which were worth up to 3 points of test accuracy on Lite0 features (logreg, C=0.3: 0.800 vs 0.833)
SEARCH_OVERRIDES: dict[str, dict[str, Any]] = {
    "logreg": {"tol": 1e-3, "max_iter": 500},
    "linear-svm": {"tol": 1e-3},
}

KERNEL_CLASSIFIERS = ("svm-rbf",)  # fitted through a precomputed Gram matrix (or Nystroem)
AUTO_PCA_VARIANCE = 0.99  # pca="auto": variance kept when features are wider than the rows

# above this many rows, at most BIG_FOLDS folds: the estimate is already tight and fits cost more
BIG_ROWS = 5000
BIG_FOLDS = 3

# small grids, centred on what works for standardised deep features, strong to weak regularisation
# (the order warm starts walk); C above 1 only overfits 1000+-dimensional features
GRIDS: dict[str, dict[str, list[Any]]] = {
    "logreg": {"C": [0.01, 0.03, 0.1, 0.3, 1.0]},
    "linear-svm": {"C": [0.001, 0.01, 0.1]},
    "svm-rbf": {"C": [1.0, 10.0, 100.0], "gamma": ["scale"]},
    "knn": {"n_neighbors": [1, 3, 5, 9, 15], "weights": ["uniform", "distance"]},
    "ridge": {"alpha": [0.1, 1.0, 10.0, 100.0, 1000.0]},
}


def make_classifier(clf: str, seed: int = 0) -> Any:
    """A fresh, unfitted scikit-learn classifier for a probe name."""
    if clf == "logreg":
        return LogisticRegression(max_iter=1000)
    if clf == "linear-svm":
        return LinearSVC(dual="auto", max_iter=2000, random_state=seed)
    if clf == "svm-rbf":
        return SVC(kernel="rbf", break_ties=True)  # predict = argmax of decision_function
    if clf == "knn":
        return KNeighborsClassifier()
    if clf == "ridge":
        return RidgeClassifier()
    raise_unknown("classifier", clf, CLASSIFIERS)
    return None  # unreachable


class Probe(ClassifierMixin, BaseEstimator):
    """A classical classifier on features: standardise, optional PCA, classifier; CV-tuned.

    ``clf``: ``logreg``, ``linear-svm``, ``svm-rbf``, ``knn`` or ``ridge``. ``pca``: components to
    keep (int), a variance fraction (float in (0, 1)), ``"auto"`` (99% of the variance when there
    are more feature dims than training rows, else none) or None. ``cv``: stratified folds for the grid
    search (fewer when a class is smaller, at most 3 above 5,000 rows; ``0`` or ``1`` fits the first
    grid point). ``grid`` replaces the default grid (keys are the classifier's parameter names).
    ``threads``: BLAS threads during fit/predict (``None`` keeps the library default); ``n_jobs``:
    folds fitted in parallel processes. ``max_memory``: bytes (or ``"2GB"``) a kernel probe may
    hold; above it ``svm-rbf`` switches to Nystroem (default: a quarter of the available RAM).
    ``progress``: a progress bar with an ETA for the search on stderr. ``solver``: ``auto`` (by
    ``max_memory``), or force ``exact`` / ``nystroem`` for ``svm-rbf``.

    Fitted attributes: ``pipeline_``, ``classes_``, ``best_params_``, ``cv_accuracy_`` (None without
    CV), ``stage_seconds_`` (wall time per stage), ``solver_`` (``exact``/``nystroem`` for kernel
    probes, else None) and ``solver_info_`` (budget, estimated bytes, landmarks, gamma).
    """

    def __init__(
        self,
        clf: str = "logreg",
        pca: int | float | None = None,
        cv: int = 5,
        grid: dict[str, list[Any]] | None = None,
        seed: int = 0,
        n_jobs: int | None = None,
        threads: int | None = 1,
        max_memory: int | str | None = None,
        progress: bool = False,
        solver: str = "auto",
    ) -> None:
        self.clf = clf
        self.pca = pca
        self.cv = cv
        self.grid = grid
        self.seed = seed
        self.n_jobs = n_jobs
        self.threads = threads
        self.max_memory = max_memory
        self.progress = progress
        self.solver = solver

    def fit(self, X: Any, y: Any) -> Probe:
        """Fit the pipeline on ``X`` (``(N, ...)``, flattened) and labels ``y``; returns self."""
        kernel = self.clf in KERNEL_CLASSIFIERS
        X, y = _as_matrix(X, np.float32 if kernel else np.float64), np.asarray(y)
        if len(X) != len(y):
            raise DataError(
                f"X has {len(X)} rows but y has {len(y)} labels; pass one label per row."
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise DataError(f"a probe needs at least 2 classes; got only {self.classes_.tolist()}.")
        self.stage_seconds_: dict[str, float] = {}
        self.solver_: str | None = None
        self.solver_info_: dict[str, Any] = {}
        with threadpool_limits(self.threads, user_api="blas"):
            if kernel:
                self._fit_kernel(X, y)
            else:
                self._fit(X, y)
        return self

    def _fit_kernel(self, X: np.ndarray, y: np.ndarray) -> None:
        """Label-free preprocessing once, then one Gram matrix (or Nystroem) for the whole search."""
        stages = Stages()
        budget = parse_bytes(self.max_memory)
        with stages("preprocess"):
            prep = Pipeline(self._pipeline(X).steps[:-1])
            Xp = _fit_scaler_in_blocks(prep.steps[0][1], X)
            if len(prep.steps) > 1:
                Xp = prep.steps[1][1].fit_transform(Xp)
        fit = fit_kernel_probe(
            Xp,
            y,
            self._grid(y),
            _folds(y, self.cv),
            budget,
            self.seed,
            stages,
            self.progress,
            self.solver,
        )
        self.best_params_, self.cv_accuracy_ = fit.best_params, fit.cv_accuracy
        self.solver_, self.solver_info_ = fit.solver, fit.info
        self.pipeline_ = Pipeline([*prep.steps, ("clf", fit.model)])
        self.stage_seconds_ = stages.seconds
        log.info(
            "probe %s (%s): best %s, CV accuracy %s, stages %s",
            self.clf,
            fit.solver,
            fit.best_params,
            fit.cv_accuracy,
            stages.seconds,
        )

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        stages = Stages()
        pipeline = self._pipeline(X)
        grid = self._grid(y)
        folds = _folds(y, self.cv)
        self.cv_accuracy_: float | None = None
        if folds >= 2 and any(len(v) > 1 for v in grid.values()):
            with stages("search"):
                self.best_params_, self.cv_accuracy_ = self._search(pipeline, grid, X, y, folds)
            log.info(
                "probe %s: best %s, CV accuracy %.4f (%d folds)",
                self.clf,
                self.best_params_,
                self.cv_accuracy_,
                folds,
            )
        else:
            self.best_params_ = {k: v[0] for k, v in grid.items()}
        self.pipeline_ = pipeline.set_params(
            **{f"clf__{k}": v for k, v in self.best_params_.items()}
        )
        with stages("final_fit"):
            self.pipeline_.fit(X, y)
        self.stage_seconds_ = stages.seconds

    def _search(self, pipeline, grid, X, y, folds) -> tuple[dict[str, Any], float]:
        return path_search(
            pipeline,
            grid,
            X,
            y,
            folds,
            seed=self.seed,
            n_jobs=self.n_jobs,
            progress=self.progress,
            overrides=SEARCH_OVERRIDES.get(self.clf) if self.grid is None else None,
        )

    def predict(self, X: Any) -> np.ndarray:
        with threadpool_limits(self.threads, user_api="blas"):
            return self.pipeline_.predict(self._rows(X))

    def decision_function(self, X: Any) -> np.ndarray:
        with threadpool_limits(self.threads, user_api="blas"):
            return self.pipeline_.decision_function(self._rows(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        with threadpool_limits(self.threads, user_api="blas"):
            return self.pipeline_.predict_proba(self._rows(X))

    def _rows(self, X: Any) -> np.ndarray:
        return _as_matrix(X, np.float32 if self.clf in KERNEL_CLASSIFIERS else np.float64)

    def _pipeline(self, X: np.ndarray) -> Pipeline:
        steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
        components = resolve_pca(self.pca, X.shape)
        if components is not None:
            steps.append(("pca", PCA(n_components=components, random_state=self.seed)))
        steps.append(("clf", make_classifier(self.clf, self.seed)))
        return Pipeline(steps)

    def _grid(self, y: np.ndarray) -> dict[str, list[Any]]:
        grid = dict(self.grid if self.grid is not None else GRIDS[self.clf])
        if self.clf == "knn" and "n_neighbors" in grid:
            folds = max(2, _folds(y, self.cv))
            smallest_train = int(len(y) * (folds - 1) / folds)
            grid["n_neighbors"] = [k for k in grid["n_neighbors"] if k <= smallest_train] or [1]
        return grid


def resolve_pca(pca: int | float | str | None, shape: tuple[int, ...]) -> int | float | None:
    """PCA components for ``X`` of ``shape`` (rows, dims): ``"auto"`` means :data:`AUTO_PCA_VARIANCE`
    of the variance when dims exceed rows, else no PCA.

    Example:
        >>> resolve_pca("auto", (2000, 11520)), resolve_pca("auto", (2000, 1280))
        (0.99, None)
    """
    if pca is None:
        return None
    if pca == "auto":
        return AUTO_PCA_VARIANCE if shape[1] > shape[0] else None
    return _check_pca(pca)


def _check_pca(pca: int | float) -> int | float:
    if isinstance(pca, bool) or not isinstance(pca, (int, float)) or pca <= 0:
        raise ConfigError(
            "pca must be 'auto', a number of components (int >= 1) or a variance fraction in "
            f"(0, 1); got {pca!r}."
        )
    if isinstance(pca, float) and pca >= 1:
        return int(pca)
    return pca


def _fit_scaler_in_blocks(
    scaler: StandardScaler, X: np.ndarray, block_bytes: int = 16 << 20
) -> np.ndarray:
    """Fit ``scaler`` block by block (its float64 temporaries stay small), return scaled ``X``."""
    rows = max(1, block_bytes // (8 * max(1, X.shape[1])))
    for start in range(0, len(X), rows):
        scaler.partial_fit(X[start : start + rows])
    return scaler.transform(X)


def _folds(y: np.ndarray, cv: int) -> int:
    """Folds for stratified CV: at most ``cv``, at most the size of the smallest class."""
    if cv is None or cv < 2:
        return 0
    smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    cv = min(int(cv), BIG_FOLDS) if len(y) > BIG_ROWS else int(cv)
    return min(cv, smallest) if smallest >= 2 else 0


def _as_matrix(X: Any, dtype: type = np.float64) -> np.ndarray:
    X = np.asarray(X, dtype=dtype)
    return X.reshape(len(X), -1) if X.ndim != 2 else X
