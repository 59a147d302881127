"""Sample datasets: real images, expected class counts, stratified split, idempotent and atomic writes."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.cli import main
from graft.data import sample_dataset, scan_dataset
from graft.data.samples import ANIMAL_CLASSES, MARKER, _load_numpy_pickle, remove_duplicates
from graft.errors import DataError, UnknownNameError, UnsafeFileError

# images per class in animal-mnist 0.4 after removing its 284 exact duplicates
ANIMAL_COUNTS = {
    "bear": 937, "bird": 812, "cat": 992, "cow": 996, "dog": 997,
    "elephant": 1000, "giraffe": 1000, "horse": 997, "sheep": 985, "zebra": 1000,
}  # fmt: skip


def test_animals_full_sample(animals: Path) -> None:
    splits = scan_dataset(animals, verify=False)
    assert splits.classes == list(ANIMAL_CLASSES)
    total = {c: splits.counts("train")[c] + splits.counts("test")[c] for c in ANIMAL_CLASSES}
    assert total == ANIMAL_COUNTS and sum(total.values()) == 10_000 - 284
    assert splits.counts("test") == {c: round(n * 0.2) for c, n in ANIMAL_COUNTS.items()}
    first = Image.open(splits.train[0][0])
    assert (first.mode, first.size) == ("L", (28, 28))
    digests = {
        hashlib.sha256(np.asarray(Image.open(p)).tobytes()).digest()
        for p, _ in splits.all_samples()
    }
    assert len(digests) == len(splits.all_samples())  # no exact duplicates left


def test_per_class_subset_counts_and_reuse(tmp_path: Path) -> None:
    dest = sample_dataset("animals", tmp_path / "a", per_class=10, seed=1)
    splits = scan_dataset(dest)
    assert splits.counts("train") == dict.fromkeys(ANIMAL_CLASSES, 8)
    assert splits.counts("test") == dict.fromkeys(ANIMAL_CLASSES, 2)
    stamp = (dest / MARKER).stat().st_mtime_ns
    assert sample_dataset("animals", tmp_path / "a", per_class=10, seed=1) == dest
    assert (dest / MARKER).stat().st_mtime_ns == stamp  # reused, not rewritten
    with pytest.raises(DataError, match="choose another folder or delete"):
        sample_dataset("animals", tmp_path / "a", per_class=12, seed=1)
    assert not [
        p for p in tmp_path.iterdir() if p.name.startswith(".")
    ]  # no temp folder left behind


def test_same_seed_same_split(tmp_path: Path) -> None:
    a = scan_dataset(sample_dataset("digits", tmp_path / "a", per_class=6), verify=False)
    b = scan_dataset(sample_dataset("digits", tmp_path / "b", per_class=6), verify=False)
    names = lambda s: sorted(Path(p).name for p, _ in s)  # noqa: E731
    assert names(a.test) == names(b.test) and names(a.train) == names(b.train)


def test_digits_sample(tmp_path: Path) -> None:
    splits = scan_dataset(sample_dataset("digits", tmp_path / "d"), verify=False)
    assert splits.classes == [str(i) for i in range(10)]
    assert len(splits.train) + len(splits.test) == 1797
    img = np.asarray(Image.open(splits.train[0][0]))
    assert img.shape == (32, 32) and img.max() > 200


def test_incomplete_folder_is_not_reused(tmp_path: Path) -> None:
    dest = sample_dataset("digits", tmp_path / "d", per_class=4)
    next((dest / "train" / "3").iterdir()).unlink()
    with pytest.raises(DataError, match="not a complete 'digits' sample"):
        sample_dataset("digits", dest, per_class=4)


def test_unknown_name_and_bad_per_class(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: animals"):
        sample_dataset("animal", tmp_path / "x")
    with pytest.raises(DataError, match="at least 2"):
        sample_dataset("digits", tmp_path / "x", per_class=1)


def test_remove_duplicates_drops_conflicting_labels() -> None:
    images = np.array([[[1]], [[1]], [[2]], [[2]], [[3]]], dtype=np.uint8)
    kept_images, kept_labels = remove_duplicates(images, np.array([0, 0, 1, 2, 1]))
    assert kept_labels.tolist() == [0, 1] and kept_images[:, 0, 0].tolist() == [1, 3]


def test_pickles_other_than_numpy_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.gz"
    with gzip.open(path, "wb") as f:
        f.write(pickle.dumps(io.BytesIO(b"x")))
    with pytest.raises(UnsafeFileError, match="only numpy arrays"):
        _load_numpy_pickle(path)


def test_cli_sample(tmp_path: Path, capsys) -> None:
    assert main(["data", "sample", "digits", str(tmp_path / "d"), "--per-class", "5"]) == 0
    out = capsys.readouterr().out
    assert "train: 40 images in 10 classes" in out and "test: 10 images" in out
