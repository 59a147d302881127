"""Ordinary mistakes get one error line with graft's own fix (exit 2), never a traceback; odd file
names are escaped wherever graft writes or prints them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from graft.data import scan_dataset
from graft.errors import DataError

from .conftest import TINY_FIT, clean_folder, run_cli

ODD = "tab\there\nnew\x1b[31mred"


class Payload:
    """An arbitrary Python object inside a weights file."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("mistakes") / "data", per_class=6)


@pytest.fixture(scope="module")
def bundle(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("mistakes-run") / "run"
    r = run_cli("fit", data, *TINY_FIT, "--recipe", "head", "--epochs", "1", "--no-report",
                "--out", run)  # fmt: skip
    assert r.code == 0, str(r)
    return run / "bundle"


def test_a_run_folder_inside_the_data_is_named_not_read_as_a_class(data, tmp_path):
    copy = shutil.copytree(data, tmp_path / "data")
    (copy / "run").mkdir()
    (copy / "run" / "config.yaml").write_text("model: x\n")
    (copy / "run" / "checkpoints").mkdir()
    with pytest.raises(DataError, match=r"holds graft output \(checkpoints\).*outside the data"):
        scan_dataset(copy)


def test_a_stray_folder_next_to_train_is_an_error(data, tmp_path):
    root = tmp_path / "split"
    shutil.copytree(data, root / "train")
    shutil.copytree(data / "red", root / "extra")
    with pytest.raises(DataError, match=r"split folders .* next to other folders \(extra\)"):
        scan_dataset(root)


def test_train_as_a_class_name_still_reads_as_an_image_folder(data, tmp_path):
    root = shutil.copytree(data, tmp_path / "vehicles")
    shutil.copytree(data / "red", root / "train")  # a class called "train": images, no folders
    assert "train" in scan_dataset(root).classes


def test_odd_names_are_escaped_in_skipped_tsv(data, tmp_path):
    root = shutil.copytree(data, tmp_path / "data")
    (root / "red" / f"{ODD}.jpg").write_bytes(b"not an image")
    splits = scan_dataset(root)
    text = splits.write_skipped(tmp_path / "skipped.tsv").read_text()
    lines = text.splitlines()
    assert len(lines) == 2 and lines[1].count("\t") == 1, lines
    assert "\x1b" not in text and "tab\\there\\nnew\\x1b[31mred.jpg" in lines[1]


def test_predict_with_every_input_unreadable_fails_with_one_line(bundle, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"junk")
    (bad / "b.png").write_bytes(b"")
    r = run_cli("predict", bundle, bad, "--out", tmp_path / "p.csv")
    assert r.code == 2 and not r.traceback, str(r)
    assert "none of the 2 input(s) could be read" in r.err
    assert not (tmp_path / "p.csv").exists()


def test_predict_reports_each_bad_input_once(bundle, data, tmp_path):
    mixed = shutil.copytree(data / "red", tmp_path / "mixed")
    (mixed / "broken.jpg").write_bytes(b"junk")
    r = run_cli("predict", bundle, mixed, "--out", tmp_path / "p.csv")
    assert r.code == 0, str(r)
    assert r.err.count("broken.jpg") == 1, r.err


def test_predict_out_that_is_a_file(bundle, data, tmp_path):
    """--out is a folder (issue #16); an existing file there is one clean error, the file untouched."""
    (tmp_path / "preds").write_text("keep me")
    r = run_cli("predict", bundle, data / "red", "--out", tmp_path / "preds")
    assert r.code == 2 and not r.traceback and "preds" in r.err, str(r)
    assert (tmp_path / "preds").read_text() == "keep me"


def test_predict_old_file_out_that_is_a_folder_is_used_as_a_folder(bundle, data, tmp_path):
    (tmp_path / "p.csv").mkdir()
    r = run_cli("predict", bundle, data / "red", "--out", tmp_path / "p.csv")
    assert r.code == 0, str(r)
    assert (tmp_path / "p.csv" / "predictions.csv").is_file()


def test_pickle_renamed_safetensors_is_refused_with_graft_fix(data, tmp_path):
    weights = tmp_path / "w.safetensors"
    torch.save({"w": torch.zeros(1)}, weights)
    opts = [o for o in TINY_FIT if o not in ("--weights", "none")]
    r = run_cli("fit", data, *opts, "--epochs", "1", "--weights", weights, "--out", tmp_path / "r")
    assert r.code == 2 and not r.traceback, str(r)
    assert "not a readable safetensors file" in r.err and "save_file(" in r.err
    assert "weights_only" not in r.err


def test_pickled_weights_message_never_suggests_weights_only_false(data, tmp_path):
    weights = tmp_path / "w.pth"
    torch.save({"w": Payload()}, weights)  # a harmless class, but torch refuses any object
    opts = [o for o in TINY_FIT if o not in ("--weights", "none")]
    r = run_cli("fit", data, *opts, "--epochs", "1", "--weights", weights, "--out", tmp_path / "r")
    assert r.code == 2 and not r.traceback, str(r)
    assert "weights_only" not in r.err and "nothing in it was executed" in r.err


def test_an_unreadable_name_is_escaped_on_the_terminal(data, tmp_path):
    root = shutil.copytree(data, tmp_path / "data")
    Image.new("RGB", (4, 4)).save(root / "red" / "ok.png")
    (root / f"{ODD}").mkdir()  # an empty class folder with an escape sequence in its name
    r = run_cli("fit", root, *TINY_FIT, "--epochs", "1", "--out", tmp_path / "r")
    assert r.code == 2 and "\x1b" not in r.err and "\\x1b[31mred" in r.err, str(r)
