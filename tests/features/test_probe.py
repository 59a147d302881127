"""Probes: scikit-learn behaviour, exported parameters, pickle-free bundles, real data accuracy."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_support import assert_probe_bundle_predicts_like
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from graft.errors import ConfigError, GraftError, UnknownNameError
from graft.features import CLASSIFIERS, Probe, extract, probe
from graft.features.probe_params import ProbeHead, export_probe

KW = {"batch_size": 6, "workers": 0}


def _blobs(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c * 0.8, 1.0, (30, 6)) for c in range(n_classes)])
    y = np.repeat(np.arange(n_classes), 30)
    return X, y, rng.normal(1.0, 1.5, (80, 6))


@pytest.mark.parametrize("clf", CLASSIFIERS)
@pytest.mark.parametrize(("n_classes", "pca"), [(2, None), (4, 3)])
def test_exported_head_reproduces_sklearn(clf: str, n_classes: int, pca) -> None:
    X, y, X_new = _blobs(n_classes)
    fitted = Probe(clf, pca=pca, cv=3).fit(X, y)
    arrays, info = export_probe(fitted.pipeline_, clf)
    scores = ProbeHead(arrays, info)(torch.as_tensor(X_new)).double().numpy()
    np.testing.assert_array_equal(fitted.classes_[scores.argmax(1)], fitted.predict(X_new))
    if clf in ("logreg", "knn"):
        np.testing.assert_allclose(np.exp(scores), fitted.predict_proba(X_new), atol=1e-6)
    else:
        ref = fitted.decision_function(X_new)
        ref = np.c_[np.zeros_like(ref), ref] if ref.ndim == 1 else ref
        np.testing.assert_allclose(scores, ref, atol=1e-5)


def test_probe_is_a_scikit_learn_estimator() -> None:
    X, y, _ = _blobs(3)
    est = Probe("ridge", cv=3)
    assert clone(est).get_params()["clf"] == "ridge"
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.mean() > 0.6  # 3 overlapping blobs; chance is 0.33
    fitted = est.fit(X, y)
    assert fitted is est and set(est.best_params_) == {"alpha"} and 0 < est.cv_accuracy_ <= 1


def test_cv_is_skipped_when_classes_are_tiny() -> None:
    X = np.array([[0.0, 1], [1, 0], [5, 5], [6, 5]])
    fitted = Probe("logreg", cv=5).fit(X, [0, 1, 2, 2])
    assert fitted.cv_accuracy_ is None and fitted.best_params_ == {"C": 0.01}


def test_bad_arguments_say_what_is_valid() -> None:
    X, y, _ = _blobs(2)
    with pytest.raises(UnknownNameError, match="Did you mean: linear-svm"):
        Probe("linear_svm").fit(X, y)
    with pytest.raises(ConfigError, match="pca must be"):
        Probe("logreg", pca=-3).fit(X, y)
    with pytest.raises(GraftError, match="at least 2 classes"):
        Probe("logreg").fit(X, np.zeros(len(X)))


@pytest.fixture
def backbone_spec():
    import graft.models as gm

    torch.manual_seed(0)
    return gm.create_model("test_resnet", num_classes=0, pretrained=False).eval()


@pytest.mark.parametrize(("clf", "pca"), [("svm-rbf", None), ("knn", 4), ("logreg", None)])
def test_reloaded_bundle_predicts_identically_on_raw_images(
    folder: Path, backbone_spec, tmp_path: Path, clf: str, pca, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = probe(
        folder, clf=clf, pca=pca, cv=2, model=backbone_spec, image_size=32, out=tmp_path / "b", **KW
    )
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "model.json",
        "model.safetensors",
        "probe.safetensors",
    ]
    bundle = assert_probe_bundle_predicts_like(tmp_path / "b", result, monkeypatch)
    assert bundle.kind == "probe" and bundle.classes == ["blue", "green", "red"]


@pytest.mark.parametrize("progress", [True, False])
def test_probe_passes_progress_to_the_extraction(
    folder: Path, backbone_spec, progress: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graft.features import probe_api

    seen = []

    def recording(*args, **kwargs):
        seen.append(kwargs.get("progress"))
        return extract(*args, **kwargs)

    monkeypatch.setattr(probe_api, "extract", recording)
    r = probe(folder, cv=2, model=backbone_spec, image_size=32, progress=progress, **KW)
    assert seen == [progress] and len(r.classes) == 3


def test_probe_reports_val_and_test(tmp_path: Path, backbone_spec) -> None:
    from imagegen import make_image_folder

    root = tmp_path / "split"
    make_image_folder(root / "train", per_class=6, size=24)
    make_image_folder(root / "test", per_class=3, size=24, seed=1)
    r = probe(root, clf="logreg", cv=3, model=backbone_spec, image_size=32, val_split=0.25, **KW)
    assert r.val_accuracy is not None and r.test_accuracy is not None and r.cv_accuracy is not None
    assert "test" in r.summary() and r.metrics["best_params"] == r.probe.best_params_
    no_val = probe(r.features, clf="ridge", cv=2)
    assert no_val.val_accuracy is None and no_val.test_accuracy == pytest.approx(
        r.test_accuracy, abs=1
    )


def test_store_with_unreproducible_weights_cannot_be_bundled(
    folder, backbone_spec, tmp_path
) -> None:
    store = tmp_path / "store"
    extract(folder, model=backbone_spec, image_size=32, out=store, progress=False, **KW)
    r = probe(store, clf="ridge", cv=2)  # probing a store works
    assert r.val_accuracy is not None
    with pytest.raises(GraftError, match="cannot save a bundle"):
        probe(store, clf="ridge", cv=2, out=tmp_path / "b")


def test_cli_probe_then_evaluate(folder: Path, tmp_path: Path, capsys) -> None:
    from graft.cli import main

    bundle = tmp_path / "bundle"
    args = [
        "probe",
        str(folder),
        "--model",
        "test_resnet",
        "--weights",
        "none",
        "--image-size",
        "32",
    ]
    assert main([*args, "--clf", "knn", "--cv", "2", "--workers", "0", "--out", str(bundle)]) == 0
    assert capsys.readouterr().out.startswith("probe knn {")
    assert main(["evaluate", str(bundle), str(folder), "--split", "all"]) == 0
    assert "12 images: accuracy" in capsys.readouterr().out


@pytest.mark.weights
@pytest.mark.slow
def test_probe_on_real_animals_is_well_above_chance(tmp_path: Path) -> None:
    from graft.data import sample_dataset

    root = sample_dataset("animals", tmp_path / "animals", per_class=12)  # 10 classes: chance 0.1
    r = probe(root, clf="logreg", cv=3, model="efficientnet_lite0", image_size=64, **KW)
    assert r.test_accuracy is not None and r.test_accuracy >= 0.5, r.summary()


def test_cv_search_matches_grid_search_cv() -> None:
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from graft.features.probe_search import path_search

    X, y, _ = _blobs(3)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", RidgeClassifier())])
    grid = {"alpha": [0.1, 10.0, 1000.0]}
    best, score = path_search(pipe, grid, X, y, folds=4, seed=1)
    ref = GridSearchCV(
        pipe, {"clf__alpha": grid["alpha"]}, cv=StratifiedKFold(4, shuffle=True, random_state=1)
    ).fit(X, y)
    assert best == {"alpha": ref.best_params_["clf__alpha"]}
    assert score == pytest.approx(ref.best_score_)


def test_default_logreg_probe_on_wide_features_takes_seconds() -> None:
    """300 x 1280 features, 10 classes (a Lite0 probe's size): the old grid search took 1,854 s."""
    import time

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (10, 1280))
    y = np.repeat(np.arange(10), 30)
    X = centres[y] + rng.normal(0, 4.0, (300, 1280))
    start = time.perf_counter()
    fitted = Probe("logreg").fit(X, y)
    seconds = time.perf_counter() - start
    assert seconds < 30, f"default logreg probe took {seconds:.1f} s"
    assert fitted.cv_accuracy_ > 0.5 and fitted.best_params_["C"] <= 1.0


def test_probe_file_with_forged_checksum_is_a_damaged_bundle(
    folder: Path, backbone_spec, tmp_path: Path
) -> None:
    import hashlib
    import json

    from graft.bundle import BundleError, load_bundle

    probe(folder, clf="ridge", cv=2, model=backbone_spec, image_size=32, out=tmp_path / "b", **KW)
    target = tmp_path / "b" / "probe.safetensors"
    target.write_bytes(pickle.dumps({"not": "tensors"}))
    meta = json.loads((tmp_path / "b" / "model.json").read_text())
    meta["files"]["probe.safetensors"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (tmp_path / "b" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="probe.safetensors is not a readable safetensors file"):
        load_bundle(tmp_path / "b")


def test_predict_on_a_logreg_probe_bundle_gives_its_probabilities(
    folder: Path, backbone_spec, tmp_path: Path
) -> None:
    """``graft predict`` applies softmax to the bundle's output: a logreg head returns
    log-probabilities, so predict's probabilities are Probe.predict_proba's and sum to 1."""
    from graft.inference.prediction import predict

    result = probe(
        folder, clf="logreg", cv=2, model=backbone_spec, image_size=32, out=tmp_path / "b", **KW
    )
    rows = predict(tmp_path / "b", folder, top_k=3)
    assert len(rows) == 12 and rows.classes == ["blue", "green", "red"]
    expected = result.probe.predict_proba(result.features.flat())
    by_file = {f: p for f, p in zip(result.features.files, expected, strict=True)}
    for row in rows:
        probs = {t["label"]: t["prob"] for t in row["top_k"]}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        ref = by_file[str(row["path"])]
        got = [probs[c] for c in rows.classes]
        np.testing.assert_allclose(got, ref, atol=1e-4)
        assert row["label"] == rows.classes[int(np.argmax(ref))]


def test_layer_auto_keeps_the_stage_with_the_better_cv_accuracy(
    tmp_path: Path, backbone_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegen import make_image_folder

    root = make_image_folder(tmp_path / "imgs", per_class=8, size=24)
    singles = {
        layer: probe(
            root, clf="logreg", cv=2, model=backbone_spec, image_size=32, layer=layer, **KW
        )
        for layer in (None, -2)
    }
    r = probe(root, clf="logreg", cv=2, model=backbone_spec, image_size=32, layer="auto",
              out=tmp_path / "b", **KW)  # fmt: skip
    cv = {"last": singles[None].cv_accuracy, "-2": singles[-2].cv_accuracy}
    assert r.layer_choice["cv_accuracy"] == cv and r.metrics["layer_choice"] == r.layer_choice
    expected = -2 if cv["-2"] > cv["last"] else None
    assert r.layer_choice["chosen"] == expected
    np.testing.assert_array_equal(r.features.flat(), singles[expected].features.flat())
    # the saved bundle reads the chosen stage: its predictions equal the probe's on the raw images
    assert_probe_bundle_predicts_like(tmp_path / "b", r, monkeypatch)


def test_layer_auto_needs_images(tmp_path: Path, folder: Path, backbone_spec) -> None:
    feats = extract(folder, model=backbone_spec, image_size=32, **KW)
    with pytest.raises(ConfigError, match="needs an image folder"):
        probe(feats, layer="auto")
    with pytest.raises(ConfigError, match="features_out"):
        probe(folder, model=backbone_spec, layer="auto", features_out=tmp_path / "f", **KW)
