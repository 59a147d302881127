"""scan_dataset: layouts, skipping and reporting bad files, stratified splits, clear errors."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from graft.data import scan_dataset, stratified_split
from graft.errors import DataError

from .conftest import BAD, IGNORED


def _write(path: Path, color: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (6, 6), color).save(path)
    return path


def _folder(root: Path, counts: dict[str, int]) -> Path:
    for cls, n in counts.items():
        for i in range(n):
            _write(root / cls / f"{i:03d}.png", (i * 7) % 256)
    return root


def test_messy_folder_skips_and_reports_every_bad_file(
    messy_folder: Path, caplog, tmp_path: Path
) -> None:
    with caplog.at_level(logging.WARNING, logger="graft"):
        splits = scan_dataset(messy_folder, workers=2)
    skipped = {str(Path(p).relative_to(messy_folder)): reason for p, reason in splits.skipped}
    assert skipped == BAD
    assert splits.classes == ["alpha", "beta"]
    names = {str(Path(p).relative_to(messy_folder)) for p, _ in splits.train}
    assert {
        "alpha/my photo é.png",
        "beta/Ünïcode name.JPG",
        "beta/nested/deep.tif",
        "beta/rotated.jpg",
    } <= names
    assert not names & set(IGNORED) and not names & set(BAD)
    assert len(splits.train) == 17 and splits.val == [] and splits.test == []
    assert f"skipped {len(BAD)} unreadable" in caplog.text
    listing = (
        splits.write_skipped(tmp_path / "skipped.tsv").read_text(encoding="utf-8").splitlines()
    )
    assert listing[0] == "path\treason" and len(listing) == len(BAD) + 1
    assert any(line.endswith("\tdecompression bomb") for line in listing)


def test_without_verify_nothing_is_decoded(messy_folder: Path) -> None:
    splits = scan_dataset(messy_folder, verify=False)
    assert splits.skipped == [] and len(splits.train) == 17 + len(BAD)


def test_split_is_stratified_and_reproducible(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"a": 20, "b": 10, "c": 5})
    first = scan_dataset(root, val_split=0.2, seed=3, verify=False)
    again = scan_dataset(root, val_split=0.2, seed=3, verify=False)
    other = scan_dataset(root, val_split=0.2, seed=4, verify=False)
    assert first.train == again.train and first.val == again.val
    assert first.val != other.val
    assert Counter(y for _, y in first.val) == {0: 4, 1: 2, 2: 1}
    assert not set(first.train) & set(first.val)
    assert sorted(first.train + first.val) == sorted(scan_dataset(root, verify=False).train)


def test_stratified_split_keeps_one_on_each_side() -> None:
    samples = [("a0", 0), ("a1", 0), *[(f"b{i}", 1) for i in range(50)]]
    keep, held = stratified_split(samples, 0.1, seed=0)
    assert Counter(y for _, y in held) == {0: 1, 1: 5}
    assert Counter(y for _, y in keep) == {0: 1, 1: 45}


def test_split_folders_detected(tmp_path: Path) -> None:
    _folder(tmp_path / "d" / "train", {"cat": 4, "dog": 3})
    _folder(tmp_path / "d" / "valid", {"cat": 2, "dog": 2})
    _folder(tmp_path / "d" / "test", {"dog": 1})
    splits = scan_dataset(tmp_path / "d", val_split=0.5)  # ignored: there is a val folder
    assert splits.classes == ["cat", "dog"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 4, 1)
    assert splits.counts("test") == {"cat": 0, "dog": 1}


def test_split_folder_with_unknown_class(tmp_path: Path) -> None:
    _folder(tmp_path / "d" / "train", {"cat": 2, "dog": 2})
    _folder(tmp_path / "d" / "test", {"cow": 1})
    with pytest.raises(DataError, match="classes not in train: cow"):
        scan_dataset(tmp_path / "d")


def test_numeric_class_names_sort_numerically(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"10": 2, "2": 2, "1": 2})
    assert scan_dataset(root, verify=False).classes == ["1", "2", "10"]


def test_empty_class_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"a": 3, "b": 3})
    (root / "empty").mkdir()
    (root / "empty" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(DataError, match=r"contain no images: .*empty"):
        scan_dataset(root)


def test_single_class(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="single class .'only'.*at least 2"):
        scan_dataset(_folder(tmp_path / "d", {"only": 5}))


def test_class_with_one_image(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"fewer than 2 .*'b' \(1\)"):
        scan_dataset(_folder(tmp_path / "d", {"a": 3, "b": 1}))


def test_class_left_with_one_readable_image(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"a": 3, "b": 2})
    (root / "b" / "001.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"fewer than 2 readable .*'b' \(1\)"):
        scan_dataset(root)


def test_no_images_at_all(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match="no images found"):
        scan_dataset(tmp_path / "d")


def test_missing_source_and_bad_fraction(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nothing")
    with pytest.raises(DataError, match="between 0 and 1"):
        scan_dataset(tmp_path, val_split=1.5)


def test_csv_with_relative_paths(tmp_path: Path) -> None:
    for i in range(3):
        _write(tmp_path / "img" / f"c{i}.png")
        _write(tmp_path / "img" / f"d{i}.png")
    rows = [f"img/c{i}.png,cat" for i in range(3)] + [f"img/d{i}.png,dog" for i in range(3)]
    (tmp_path / "labels.csv").write_text(
        "path,label,notes\n" + "\n".join(f"{r},x" for r in rows) + "\n"
    )
    splits = scan_dataset(tmp_path / "labels.csv", val_split=1 / 3)
    assert splits.classes == ["cat", "dog"]
    assert len(splits.train) == 4 and len(splits.val) == 2
    assert all(Path(p).is_absolute() and Path(p).exists() for p, _ in splits.all_samples())


def test_tsv_headerless_and_missing_file(tmp_path: Path) -> None:
    for i in range(2):
        _write(tmp_path / f"a{i}.png")
        _write(tmp_path / f"b{i}.png")
    lines = ["a0.png\tx", "a1.png\tx", "b0.png\ty", "b1.png\ty", "b2.png\ty"]
    (tmp_path / "labels.tsv").write_text("\n".join(lines))
    splits = scan_dataset(tmp_path / "labels.tsv")
    assert len(splits.train) == 4
    assert splits.skipped == [(str(tmp_path / "b2.png"), "missing file")]


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("file,category\n", "has a header but no data rows"),
        (
            "path,kind\na.png,x\n",
            r"row 1: the header \['path', 'kind'\] has no label column.*label, class",
        ),
        ("name,label\na.png,x\n", "has no path column"),
        ("path,label\na.png,x\nb,c.png,y\n", "row 3: expected 2 fields .*got 3.*quote"),
        ("path,label\na.png,\n", "row 2: empty label"),
        ("hello world\n", "row 1: no header found"),
        ("", "has no rows"),
    ],
)
def test_csv_errors_name_file_row_and_fix(tmp_path: Path, text: str, pattern: str) -> None:
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=pattern) as info:
        scan_dataset(tmp_path / "labels.csv")
    assert "labels.csv" in str(info.value)


def test_csv_test_split_with_unknown_label(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"cat": 2, "dog": 2})
    _write(tmp_path / "t.png")
    (tmp_path / "test.csv").write_text("path,label\nt.png,horse\n")
    with pytest.raises(
        DataError, match="test data .* classes not in train: horse.*Train classes: cat, dog"
    ):
        scan_dataset(root, test=tmp_path / "test.csv")


def test_other_file_types_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match="neither a folder nor a CSV"):
        scan_dataset(tmp_path / "data.zip")
