"""evaluate: metrics equal scikit-learn's, report files, splits, class checks, CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

from graft.bundle import load_bundle, save_bundle
from graft.cli import main
from graft.data.images import load_image
from graft.data.transforms import build_transforms
from graft.errors import DataError
from graft.inference import evaluate
from graft.inference.metrics import classification_metrics

from .conftest import CLASSES, DATA_CONFIG, tiny_model


def test_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c", "d", "e"]
    y = rng.integers(0, 5, 200)
    probs = rng.dirichlet(np.ones(5), 200)
    probs[np.arange(100), y[:100]] += 1  # better than chance
    probs /= probs.sum(1, keepdims=True)
    pred = probs.argmax(1)
    m = classification_metrics(y, probs, classes, top_k=(1, 3))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["top_k_accuracy"]["3"] == pytest.approx(top_k_accuracy_score(y, probs, k=3))
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    assert [r["f1"] for r in m["per_class"]] == pytest.approx(f1_score(y, pred, average=None))
    assert [r["precision"] for r in m["per_class"]] == pytest.approx(
        precision_score(y, pred, average=None)
    )
    assert [r["recall"] for r in m["per_class"]] == pytest.approx(
        recall_score(y, pred, average=None)
    )
    assert sum(r["support"] for r in m["per_class"]) == 200


def test_absent_class_keeps_its_row() -> None:
    m = classification_metrics(np.array([0, 0, 1]), np.eye(3)[[0, 1, 1]], ["a", "b", "c"])
    assert [r["support"] for r in m["per_class"]] == [2, 1, 0]
    assert np.asarray(m["confusion_matrix"]).shape == (3, 3)


def _manual_predictions(bundle_dir: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    bundle = load_bundle(bundle_dir)
    transform = build_transforms(DATA_CONFIG, train=False)
    files = sorted((p, CLASSES.index(p.parent.name)) for p in folder.rglob("*") if p.is_file())
    x = torch.stack([transform(load_image(f)) for f, _ in files])
    with torch.inference_mode():
        probs = bundle.model(x).softmax(1).numpy()
    return np.array([y for _, y in files]), probs


def test_evaluate_image_folder_writes_report(
    bundle_dir: Path, tiny_folder: Path, tmp_path: Path
) -> None:
    y, probs = _manual_predictions(bundle_dir, tiny_folder)
    (tiny_folder / "red" / "zero.jpg").write_bytes(b"")
    result = evaluate(bundle_dir, tiny_folder, out=tmp_path / "eval", top_k=2, batch_size=7)
    pred = probs.argmax(1)
    assert result.metrics["n"] == 24
    assert result.accuracy == pytest.approx(accuracy_score(y, pred))
    assert result.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, pred))
    assert result.top_k_accuracy["2"] == pytest.approx(
        top_k_accuracy_score(y, probs, k=2, labels=[0, 1, 2])
    )
    assert result.confusion_matrix.tolist() == confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()
    assert [p for p, _ in result.skipped] == [str(tiny_folder / "red" / "zero.jpg")]
    out = tmp_path / "eval"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "metrics.json",
        "per_class.csv",
        "predictions.csv",
        "skipped.tsv",
    ]
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.reader((out / "confusion_matrix.csv").open()))
    assert (
        rows[0][1:] == CLASSES
        and [list(map(int, r[1:])) for r in rows[1:]] == result.confusion_matrix.tolist()
    )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["accuracy"] == result.accuracy and saved["skipped"] == 1
    assert len(list(csv.reader((out / "predictions.csv").open()))) == 25


def test_split_folders_and_subset_of_classes(bundle_dir: Path, tmp_path: Path) -> None:
    from imagegen import make_image_folder

    make_image_folder(tmp_path / "d" / "train", per_class=3)
    make_image_folder(tmp_path / "d" / "test", per_class=2, seed=1)
    result = evaluate(bundle_dir, tmp_path / "d")
    assert result.metrics["n"] == 6 and result.metrics["split"] == "test"
    assert evaluate(bundle_dir, tmp_path / "d", split="train").metrics["n"] == 9
    with pytest.raises(DataError, match="no 'val' images"):
        evaluate(bundle_dir, tmp_path / "d", split="val")


def test_unknown_classes_named(tmp_path: Path, tiny_folder: Path) -> None:
    model = tiny_model()
    model.reset_classifier(3)
    bundle = save_bundle(tmp_path / "b", model, ["blue", "grean", "yellow"], DATA_CONFIG)
    with pytest.raises(DataError, match=r"'green' \(did you mean 'grean'\?\), 'red'"):
        evaluate(bundle, tiny_folder)


def test_cli_evaluate(
    bundle_dir: Path, tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert (
        main(
            [
                "evaluate",
                str(bundle_dir),
                str(tiny_folder),
                "--out",
                str(tmp_path / "e"),
                "--tta",
                "--top-k",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("24 images: accuracy") and "top-2" in out and "recall" in out
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["tta"] is True
    assert main(["evaluate", str(bundle_dir), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_in_a_run_folder_calls_the_installed_reporter(
    bundle_dir: Path, tiny_folder: Path, tmp_path: Path
) -> None:
    from graft.train import reporters

    (bundle_dir.parent / "config.yaml").write_text("model: tiny\n")  # bundle_dir sits in a run
    calls = []

    def reporter(run_dir, **options):
        calls.append((run_dir, options))
        return options["out"]

    previous = reporters.set_run_reporter(reporter)
    try:
        evaluate(bundle_dir, tiny_folder, out=tmp_path / "eval")
        evaluate(bundle_dir, tiny_folder, out=tmp_path / "quiet", report=False)
    finally:
        reporters.set_run_reporter(previous)
    out = tmp_path / "eval"
    assert calls == [(bundle_dir.parent, {"out": out / "report.html", "evaluation": out})]
