"""Kernel probes: BLAS Gram matrices equal scikit-learn's RBF SVC, Nystroem above the budget,
``pca="auto"``, stage times, and bundles of both solvers that reload without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_support import assert_probe_bundle_predicts_like
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import graft.features.kernels as kernels
from graft.errors import ConfigError
from graft.features import Probe, probe
from graft.features.kernel_search import choose_solver, fit_kernel_probe
from graft.features.kernels import GramSVC, parse_bytes, squared_distances
from graft.features.nystroem import NystroemRidge, ridge_path_scores
from graft.features.probe_params import ProbeHead, export_probe
from graft.features.probe_search import path_search
from graft.features.probing import resolve_pca

KW = {"batch_size": 6, "workers": 0}


def _rings(
    n: int = 240, dims: int = 8, seed: int = 0, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """3 classes on concentric shells (radius 1, 2, 3) in ``dims`` dims: no linear model separates
    them, an RBF kernel does (``noise`` 0.4: CV accuracy ~0.8, falling with C)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    direction = rng.normal(size=(n, dims))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * (1.0 + y)[:, None] + rng.normal(0, noise, (n, dims)), y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_squared_distances_equal_sklearn_in_row_chunks(monkeypatch, dtype: str) -> None:
    monkeypatch.setattr(kernels, "CHUNK_BYTES", 7 * 4 * 8)  # 7-row blocks of 8-column rows
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(50, 30)), rng.normal(size=(8, 30))
    got = squared_distances(A, B, dtype)
    assert got.dtype == np.dtype(dtype) and got.shape == (50, 8)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, euclidean_distances(A, B, squared=True), rtol=tol, atol=tol)
    self_d = squared_distances(A, None, dtype)
    assert np.all(np.diag(self_d) == 0) and np.all(self_d >= 0)


@pytest.mark.parametrize(("dtype", "atol"), [("float64", 1e-7), ("float32", 1e-3)])
@pytest.mark.parametrize("C", [1.0, 10.0])
def test_gram_svc_equals_sklearn_rbf_svc(dtype: str, atol: float, C: float) -> None:
    X, y = _rings()
    X_new, _ = _rings(90, seed=1)
    ours = GramSVC(C=C, dtype=dtype).fit(X, y)
    ref = SVC(kernel="rbf", C=C, gamma="scale", break_ties=True).fit(X, y)
    np.testing.assert_allclose(
        ours.decision_function(X_new), ref.decision_function(X_new), atol=atol
    )
    np.testing.assert_array_equal(ours.predict(X_new), ref.predict(X_new))
    assert ours._gamma == pytest.approx(ref._gamma)
    if dtype == "float64":
        np.testing.assert_array_equal(ours.support_, ref.support_)
        np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, atol=1e-6)


def test_binary_gram_svc_and_vote_rule_match_sklearn() -> None:
    X, y = _rings()
    X_new, _ = _rings(60, seed=2)
    keep = y < 2
    two = GramSVC(C=3.0, dtype="float64").fit(X[keep], y[keep])
    ref = SVC(kernel="rbf", C=3.0).fit(X[keep], y[keep])
    np.testing.assert_array_equal(two.predict(X_new), ref.predict(X_new))
    votes = GramSVC(C=3.0, break_ties=False, dtype="float64").fit(X, y)
    np.testing.assert_array_equal(votes.predict(X_new), SVC(C=3.0).fit(X, y).predict(X_new))


def test_svm_rbf_probe_matches_the_libsvm_pipeline() -> None:
    """Same C chosen and the same predictions as the old path (StandardScaler + libsvm RBF SVC)."""
    X, y = _rings(noise=0.4)
    X_new, _ = _rings(90, seed=1, noise=0.4)
    fitted = Probe("svm-rbf", cv=3).fit(X, y)
    assert fitted.solver_ == "exact"
    old = Pipeline([("scale", StandardScaler()), ("clf", SVC(kernel="rbf", break_ties=True))])
    best, cv = path_search(old, {"C": [1.0, 10.0, 100.0], "gamma": ["scale"]}, X, y, folds=3)
    assert fitted.best_params_ == best
    assert fitted.cv_accuracy_ == pytest.approx(cv, abs=0.03)  # scaler per fold vs once
    old.set_params(clf__C=best["C"]).fit(X, y)
    np.testing.assert_allclose(
        fitted.decision_function(X_new), old.decision_function(X_new), atol=1e-3
    )
    assert np.mean(fitted.predict(X_new) == old.predict(X_new)) == 1.0
    assert set(fitted.stage_seconds_) == {"preprocess", "gram", "search", "final_fit"}


def test_nystroem_above_the_memory_budget_is_accurate_and_exports() -> None:
    X, y = _rings(600)
    X_new, y_new = _rings(300, seed=1)
    fitted = Probe("svm-rbf", cv=3, max_memory=100_000).fit(X, y)  # exact needs > 200 MB
    assert fitted.solver_ == "nystroem" and isinstance(fitted.pipeline_[-1], NystroemRidge)
    info = fitted.solver_info_
    assert info["max_memory_bytes"] == 100_000 and info["exact_bytes"] > 100_000
    assert info["n_components"] == 100 and set(fitted.best_params_) == {"alpha", "gamma"}
    assert np.mean(fitted.predict(X_new) == y_new) > 0.9  # chance 0.33; linear models ~0.4
    exact = Probe("svm-rbf", cv=3).fit(X, y)
    assert abs(fitted.score(X_new, y_new) - exact.score(X_new, y_new)) < 0.05
    arrays, head_info = export_probe(fitted.pipeline_, "svm-rbf")
    assert head_info["kind"] == "nystroem" and arrays["landmarks"].shape == (100, 8)
    scores = ProbeHead(arrays, head_info)(torch.as_tensor(X_new)).double().numpy()
    np.testing.assert_allclose(scores, fitted.decision_function(X_new), atol=1e-4)


def test_solver_choice_follows_the_budget() -> None:
    assert choose_solver(2000, 11520, 2 << 30)[0] == "exact"
    solver, info = choose_solver(20000, 11520, 2 << 30)
    assert solver == "nystroem" and info["exact_bytes"] > 4 << 30
    assert 100 <= info["n_components"] <= 2000 and info["nystroem_bytes"] <= 2 << 30
    assert choose_solver(20000, 11520, 1 << 40)[0] == "exact"


def test_ridge_path_scores_equal_ridge_classifier() -> None:
    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(120, 15)), np.arange(120) % 4
    Z[np.arange(120), y] += 1.5
    Z_test, y_test = rng.normal(size=(60, 15)), np.arange(60) % 4
    Z_test[np.arange(60), y_test] += 1.5
    alphas = [0.01, 1.0, 100.0]
    want = [RidgeClassifier(alpha=a).fit(Z, y).score(Z_test, y_test) for a in alphas]
    assert ridge_path_scores(Z, y, Z_test, y_test, alphas) == pytest.approx(want)


def test_parse_bytes_and_bad_values() -> None:
    assert parse_bytes("2GB") == 2 << 30 and parse_bytes("512M") == 512 << 20
    assert parse_bytes(1000) == 1000 and parse_bytes("1.5 GiB") == int(1.5 * 2**30)
    assert parse_bytes(None) > 0 and parse_bytes("auto") > 0
    for bad in ("lots", "-1GB", 0, "2 parsecs"):
        with pytest.raises(ConfigError, match="max_memory must be a size"):
            parse_bytes(bad)


def test_pca_auto_only_for_wide_features() -> None:
    assert resolve_pca("auto", (50, 200)) == 0.99 and resolve_pca("auto", (200, 50)) is None
    with pytest.raises(ConfigError, match="'auto'"):
        resolve_pca("always", (2, 2))
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    wide = rng.normal(size=(60, 200)) + y[:, None] * 0.5
    fitted = Probe("svm-rbf", pca="auto", cv=2).fit(wide, y)
    assert "pca" in fitted.pipeline_.named_steps and fitted.score(wide, y) > 0.9
    assert (
        "pca" not in Probe("svm-rbf", pca="auto", cv=2).fit(wide[:, :20], y).pipeline_.named_steps
    )


def test_fit_kernel_probe_without_cv_takes_the_first_candidate() -> None:
    X, y = _rings(60)
    fit = fit_kernel_probe(
        X, y, {"C": [10.0, 1.0], "gamma": ["scale"]}, folds=0, max_memory=1 << 30
    )
    assert fit.cv_accuracy is None and fit.best_params == {"C": 10.0, "gamma": "scale"}


def test_nystroem_bundle_reloads_without_pickle_and_predicts_identically(
    folder: Path, backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = probe(
        folder,
        clf="svm-rbf",
        cv=2,
        model=backbone,
        image_size=32,
        max_memory="64KB",
        out=tmp_path / "b",
        **KW,
    )
    assert result.metrics["solver"] == "nystroem" and "[nystroem]" in result.summary()
    meta = json.loads((tmp_path / "b" / "model.json").read_text())
    described = meta["extra"]["probe"]
    assert described["solver"] == "nystroem" and described["head"]["kind"] == "nystroem"
    assert described["solver_info"]["max_memory_bytes"] == 64 << 10
    assert_probe_bundle_predicts_like(tmp_path / "b", result, monkeypatch)


def test_cli_json_reports_solver_and_stage_seconds(folder: Path, tmp_path: Path, capsys) -> None:
    from graft.cli import main

    args = ["probe", str(folder), "--model", "test_resnet", "--random-init", "--image-size", "32"]
    args += ["--clf", "svm-rbf", "--cv", "2", "--workers", "0", "--pool", "none", "--json"]
    assert main([*args, "--pca", "auto", "--max-memory", "1GB"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["solver"] == "exact" and doc["solver_info"]["max_memory_bytes"] == 1 << 30
    assert set(doc["stage_seconds"]) == {"extract", "preprocess", "gram", "search", "final_fit"}
    assert doc["best_params"]["C"] in (1.0, 10.0, 100.0) and 0 <= doc["val_accuracy"] <= 1
    assert main([*args, "--max-memory", "plenty"]) == 2
    assert "max_memory must be a size" in capsys.readouterr().err


@pytest.mark.parametrize("max_memory", [None, "64KB"])  # exact kernel, then Nystroem
def test_kernel_probe_bundle_exports_to_onnx_with_a_dynamic_batch(
    folder: Path, backbone, tmp_path: Path, max_memory
) -> None:
    from graft.bundle import load_bundle
    from graft.export import export

    kw = {"cv": 2, "model": backbone, "image_size": 32, "pool": "none", **KW}
    r = probe(folder, clf="svm-rbf", max_memory=max_memory, out=tmp_path / "b", **kw)
    assert r.probe.solver_ == ("nystroem" if max_memory else "exact")
    exported = export(tmp_path / "b", out=tmp_path / "onnx")
    assert exported.parity["top1_agreement"] == 1.0
    x = torch.randn(5, 3, 32, 32)  # a batch size the export never saw
    np.testing.assert_allclose(
        load_bundle(exported.path).logits(x).numpy(),
        load_bundle(tmp_path / "b").logits(x).numpy(),
        atol=1e-4,
    )


def test_solver_can_be_forced_and_unknown_solvers_are_refused() -> None:
    from graft.errors import UnknownNameError

    X, y = _rings(300)
    forced = Probe("svm-rbf", cv=2, solver="nystroem").fit(X, y)  # fits the default budget
    assert forced.solver_ == "nystroem" and forced.solver_info_["n_components"] == 300
    assert Probe("svm-rbf", cv=2, max_memory=1000, solver="exact").fit(X, y).solver_ == "exact"
    with pytest.raises(UnknownNameError, match="nystroem"):
        Probe("svm-rbf", solver="nystrom").fit(X, y)
