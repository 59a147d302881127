"""predict: files, folders and globs; bad files reported and skipped; CSV/JSON outputs; CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from graft.bundle import load_bundle
from graft.cli import main
from graft.data.images import load_image
from graft.data.transforms import build_transforms
from graft.errors import ConfigError, DataError
from graft.inference import predict, write_predictions

from .conftest import CLASSES, DATA_CONFIG


def _add_bad_files(folder: Path) -> list[str]:
    bad = folder / "red"
    (bad / "empty.jpg").write_bytes(b"")
    good = next(bad.glob("*.png")).read_bytes()
    (bad / "truncated.png").write_bytes(good[: len(good) // 3])
    (bad / "page.jpg").write_text("<!doctype html><html>not an image</html>")
    return [str(bad / n) for n in ("empty.jpg", "truncated.png", "page.jpg")]


def test_predict_folder_with_bad_files(bundle_dir: Path, tiny_folder: Path) -> None:
    bad = _add_bad_files(tiny_folder)
    preds = predict(bundle_dir, tiny_folder, top_k=2, batch_size=5)
    assert len(preds) == 24
    assert sorted(p for p, _ in preds.skipped) == sorted(bad)
    reasons = dict(preds.skipped)
    assert reasons[bad[0]] == "zero-byte file"
    assert reasons[bad[2]] == "not an image"
    row = preds[0]
    assert set(row) == {"path", "label", "prob", "top_k"} and len(row["top_k"]) == 2
    assert (
        row["label"] == row["top_k"][0]["label"]
        and row["top_k"][0]["prob"] >= row["top_k"][1]["prob"]
    )
    assert not set(bad) & {r["path"] for r in preds}


def test_probabilities_match_manual_forward(bundle_dir: Path, tiny_folder: Path) -> None:
    files = sorted(str(p) for p in (tiny_folder / "blue").iterdir())[:4]
    preds = predict(bundle_dir, files, top_k=3, batch_size=3)
    bundle = load_bundle(bundle_dir)
    transform = build_transforms(DATA_CONFIG, train=False)
    x = torch.stack([transform(load_image(f)) for f in files])
    with torch.inference_mode():
        probs = bundle.model(x).softmax(1).numpy()
    for row, p in zip(preds, probs, strict=True):
        got = {t["label"]: t["prob"] for t in row["top_k"]}
        assert got == pytest.approx(
            {c: float(v) for c, v in zip(CLASSES, p, strict=True)}, abs=1e-6
        )
        assert row["label"] == CLASSES[int(p.argmax())]


def test_globs_missing_and_duplicates(bundle_dir: Path, tiny_folder: Path) -> None:
    pattern = str(tiny_folder / "green" / "*.png")
    preds = predict(bundle_dir, [pattern, pattern, str(tiny_folder / "nope.jpg")], top_k=1)
    assert len(preds) == 4  # 4 PNGs in green, listed once
    assert preds.skipped == [(str(tiny_folder / "nope.jpg"), "missing file")]
    with pytest.raises(DataError, match="no images to predict"):
        predict(bundle_dir, [str(tiny_folder / "*.gif")])


def test_tta_averages_with_the_mirror(bundle_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    Image.fromarray(arr[:, ::-1]).save(tmp_path / "mirror.png")

    def probs(path: Path, tta: bool = False) -> dict[str, float]:
        row = predict(bundle_dir, path, top_k=3, tta=tta)[0]
        return {t["label"]: t["prob"] for t in row["top_k"]}

    plain, mirror, tta = (
        probs(tmp_path / "a.png"),
        probs(tmp_path / "mirror.png"),
        probs(tmp_path / "a.png", True),
    )
    assert plain != pytest.approx(mirror, abs=1e-4)  # the model is not flip-invariant
    assert tta == pytest.approx({c: (plain[c] + mirror[c]) / 2 for c in CLASSES}, abs=1e-5)


def test_write_csv_and_json(bundle_dir: Path, tiny_folder: Path, tmp_path: Path) -> None:
    bad = _add_bad_files(tiny_folder)
    preds = predict(bundle_dir, tiny_folder, top_k=2)
    write_predictions(preds, tmp_path / "p.csv")
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 24
    assert list(rows[0]) == [
        "path",
        "label",
        "prob",
        "top1_label",
        "top1_prob",
        "top2_label",
        "top2_prob",
    ]
    skipped = (tmp_path / "p.skipped.tsv").read_text().splitlines()
    assert len(skipped) == 1 + len(bad)
    write_predictions(preds, tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert (
        data["classes"] == CLASSES and len(data["predictions"]) == 24 and len(data["skipped"]) == 3
    )
    with pytest.raises(ConfigError, match=r"\.csv or \.json"):
        write_predictions(preds, tmp_path / "p.txt")


def test_cli_predict(
    bundle_dir: Path, tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    shutil.rmtree(tiny_folder / "red")
    _ = (tiny_folder / "green" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0junk")
    assert (
        main(
            [
                "predict",
                str(bundle_dir),
                str(tiny_folder),
                "--top-k",
                "1",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "16 predictions written" in err and "broken.jpg" in err
    written = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert len(written["predictions"]) == 16 and (tmp_path / "o" / "predictions.csv").is_file()
    assert "top_k: 1" in (tmp_path / "o" / "config.yaml").read_text()
    assert main(["predict", str(bundle_dir), str(tiny_folder / "blue"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert len(printed["predictions"]) == 8 and printed["classes"]
    assert main(["predict", str(bundle_dir), str(tiny_folder / "blue")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("path,label,prob,top1_label") and len(out) == 9


def test_cli_refuses_pickle(
    tmp_path: Path, tiny_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "model.pt").write_bytes(b"\x80\x04junk")
    assert main(["predict", str(tmp_path / "model.pt"), str(tiny_folder)]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and "Traceback" not in err


def test_worker_processes_still_report_bad_files(bundle_dir: Path, tiny_folder: Path) -> None:
    bad = _add_bad_files(tiny_folder)
    preds = predict(bundle_dir, tiny_folder, top_k=1, workers=1)
    assert len(preds) == 24 and sorted(p for p, _ in preds.skipped) == sorted(bad)
