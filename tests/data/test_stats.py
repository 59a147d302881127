"""dataset_stats: exact mean/std (equal to numpy), counts, sizes, duplicates, corrupt files, advice, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.cli import main
from graft.data import dataset_stats, load_image, scan_dataset
from graft.data.stats import exact_mean_std, normalization_stats, recommend_normalization

from .conftest import BAD

HALF = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def _numpy_mean_std(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.concatenate(
        [np.asarray(load_image(p, "RGB"), dtype=np.float64).reshape(-1, 3) for p in paths]
    )
    return pixels.mean(axis=0) / 255, pixels.std(axis=0) / 255


@pytest.mark.parametrize("executor", ["serial", "thread", "process"])
def test_mean_std_equal_numpy_on_mixed_modes(messy_folder: Path, executor: str) -> None:
    stats = dataset_stats(messy_folder, model=None, workers=2, progress=False, executor=executor)
    good = [p for p, _ in scan_dataset(messy_folder).train]
    mean, std = _numpy_mean_std(good)
    np.testing.assert_allclose(stats.mean, mean, atol=1e-6, rtol=0)
    np.testing.assert_allclose(stats.std, std, atol=1e-6, rtol=0)
    assert stats.num_images == len(good) == 17
    assert stats.pixels == sum(load_image(p).width * load_image(p).height for p in good)
    assert {str(Path(p).relative_to(messy_folder)): r for p, r in stats.corrupt} == BAD


def test_counts_sizes_modes_duplicates(tmp_path: Path, tiny_folder_session: Path) -> None:
    root = shutil.copytree(tiny_folder_session, tmp_path / "d")
    shutil.copy(root / "red" / "red_000.jpg", root / "blue" / "copy.jpg")
    Image.new("L", (40, 10), 128).save(root / "green" / "gray.png")
    Image.new("RGB", (300, 200), (90, 90, 90)).save(root / "green" / "gray_rgb.jpg")
    (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    stats = dataset_stats(root, model=None, progress=False, workers=2)
    assert stats.classes == ["blue", "green", "red"]
    assert stats.counts == {"train": {"blue": 13, "green": 14, "red": 12}}
    assert stats.num_images == 39 and stats.corrupt == [
        (str(root / "red" / "broken.png"), "corrupt")
    ]
    assert stats.duplicates == [
        sorted([str(root / "blue" / "copy.jpg"), str(root / "red" / "red_000.jpg")])
    ]
    assert stats.sizes["width"] == {"min": 32, "median": 32, "max": 300}
    assert stats.sizes["height"]["min"] == 10
    assert (
        stats.sizes["shorter_side_buckets"]["<32"] == 1
        and stats.sizes["shorter_side_buckets"]["128-255"] == 1
    )
    assert stats.grayscale == 2 and stats.modes == {"L": 1, "RGB": 38}
    assert stats.imbalance == pytest.approx(14 / 12)
    json.dumps(stats.to_dict())


def test_exact_mean_std_from_integer_sums() -> None:
    values = np.array([0, 1, 254, 255, 17], dtype=np.int64)
    mean, std = exact_mean_std([int(values.sum())], [int((values**2).sum())], len(values))
    assert mean[0] == pytest.approx(values.mean() / 255, abs=1e-12)
    assert std[0] == pytest.approx(values.std() / 255, abs=1e-12)


def test_recommendation() -> None:
    choice, reason = recommend_normalization([0.45] * 3, [0.28] * 3, 0.0, [0.5] * 3, [0.5] * 3)
    assert choice == "pretrained" and "backbone was trained with them" in reason
    choice, reason = recommend_normalization([0.08] * 3, [0.1] * 3, 1.0, [0.5] * 3, [0.5] * 3)
    assert choice == "dataset" and "grayscale" in reason and "0.84" in reason


def test_dark_grayscale_scans_get_dataset_normalization(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for i in range(3):
            arr = rng.integers(0, 30, (16, 16), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / "d" / cls / f"{i}.png")
    stats = dataset_stats(tmp_path / "d", model=HALF, progress=False)
    assert stats.recommendation == "dataset" and stats.grayscale_share == 1.0
    assert stats.pretrained_mean == [0.5] * 3


def test_cli_json_and_out(tiny_folder_session: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "stats"  # a folder: OUT/stats.json and OUT/config.yaml
    code = main(
        [
            "stats",
            str(tiny_folder_session),
            "--model",
            "test_efficientnet",
            "--json",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and json.loads((out / "stats.json").read_text()) == printed
    assert "model: test_efficientnet" in (out / "config.yaml").read_text()
    assert printed["num_images"] == 36 and printed["recommendation"] in ("pretrained", "dataset")
    assert printed["model"] == "test_efficientnet" and len(printed["pretrained_mean"]) == 3


def test_cli_report_and_errors(tiny_folder_session: Path, capsys) -> None:
    assert main(["stats", str(tiny_folder_session), "--no-progress"]) == 0
    report = capsys.readouterr().out
    assert "mean (RGB, 0-1)" in report and "recommended normalization: pretrained" in report
    assert main(["stats", str(tiny_folder_session / "nope"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_normalization_stats_use_training_images_only(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        for i, value in enumerate((0, 0, 0, 0, 255)):
            (tmp_path / "d" / cls).mkdir(parents=True, exist_ok=True)
            Image.new("L", (4, 4), value).save(tmp_path / "d" / cls / f"{i}.png")
    splits = scan_dataset(tmp_path / "d", val_split=0.2, seed=0)
    train_paths = [p for p, _ in splits.train]
    mean, std = _numpy_mean_std(train_paths)
    stats = normalization_stats(splits, progress=False)
    np.testing.assert_allclose(stats["mean"], mean, atol=1e-9)
    np.testing.assert_allclose(stats["std"], std, atol=1e-9)
    whole = dataset_stats(tmp_path / "d", model=None, progress=False)
    assert whole.mean[0] == pytest.approx(0.2) and stats["mean"][0] != pytest.approx(0.2)
