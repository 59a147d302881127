"""Crafted fields in model.json and manifest.json are refused by name before anything uses them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from graft.bundle import BundleError, load_bundle
from graft.errors import DataError, UnsafeFileError
from graft.features.store import FeatureStore

from .conftest import TINY_EXTRACT, clean_folder, run_cli


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from graft.train import fit

    root = tmp_path_factory.mktemp("crafted")
    data = clean_folder(root / "data", per_class=6)
    run = fit(
        data, model="test_efficientnet", weights="none", image_size=32, batch_size=8, workers=0,
        progress=False, recipe="head", epochs=1, out=str(root / "run"), val_split=0.25,
        report=False,
    )  # fmt: skip
    r = run_cli("extract", data, *TINY_EXTRACT, "--out", root / "feats")
    assert r.code == 0, str(r)
    return {"data": data, "bundle": run.bundle, "feats": root / "feats"}


def _edit(src: Path, dest: Path, name: str, change) -> Path:
    shutil.copytree(src, dest)
    meta = json.loads((dest / name).read_text())
    change(meta)
    (dest / name).write_text(json.dumps(meta))
    return dest


def _set(path: str, value):
    def change(meta: dict) -> None:
        *parents, last = path.split(".")
        target = meta
        for key in parents:
            target = target[key]
        target[last] = value

    return change


BUNDLE_CASES = {
    "huge-input": ("data_config.input_size", [3, 100000, 100000], "data_config.input_size"),
    "zero-std": ("data_config.std", [0.0, 0.2, 0.2], "data_config.std"),
    "nan-mean": ("data_config.mean", [float("nan")] * 3, "data_config.mean"),
    "fewer-classes": ("classes", ["blue", "green"], "classes"),
    "more-classes": ("classes", ["blue", "green", "red", "extra"], "classes"),
    "repeated-class": ("classes", ["blue", "blue", "red"], "classes"),
    "bad-crop": ("data_config.crop_pct", -1, "data_config.crop_pct"),
    "bad-interp": ("data_config.interpolation", "sinc", "data_config.interpolation"),
    "spec-not-a-map": ("spec", "test_efficientnet", "spec"),
}


@pytest.mark.parametrize("case", list(BUNDLE_CASES))
def test_crafted_bundle_field_is_named(made, tmp_path, case):
    key, value, named = BUNDLE_CASES[case]
    bundle = _edit(made["bundle"], tmp_path / "b", "model.json", _set(key, value))
    with pytest.raises(UnsafeFileError, match=re.escape(f"model.json: {named} is ")):
        load_bundle(bundle)


def test_head_size_is_checked_against_the_built_model(made, tmp_path):
    def change(meta: dict) -> None:  # classes and spec agree with each other, not with the weights
        meta["classes"] = ["blue", "green"]
        meta["spec"]["num_classes"] = 2

    bundle = _edit(made["bundle"], tmp_path / "b", "model.json", change)
    with pytest.raises(BundleError, match="do not fit the architecture"):
        load_bundle(bundle)


def test_predict_with_a_crafted_bundle_is_one_line(made, tmp_path):
    bundle = _edit(made["bundle"], tmp_path / "b", "model.json",
                   _set("data_config.input_size", [3, 100000, 100000]))  # fmt: skip
    r = run_cli("predict", bundle, made["data"] / "red", "--out", tmp_path / "p")
    assert r.code == 2 and not r.traceback, str(r)
    assert r.err.strip().count("\n") == 0 and "data_config.input_size" in r.err


MANIFEST_CASES = {
    "short-classes": (lambda m: m.__setitem__("classes", m["classes"][:1]), "entries[0].label"),
    "escaping-shard": (lambda m: m["entries"][0].__setitem__("shard", "../x"), "entries[0].shard"),
    "extra-key": (lambda m: m["entries"][0].__setitem__("code", 1), "entries[0]"),
    "negative-row": (lambda m: m["entries"][0].__setitem__("row", -3), "entries[0].row"),
    "settings-list": (lambda m: m.__setitem__("settings", []), "settings"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_crafted_manifest_field_is_named(made, tmp_path, case):
    change, named = MANIFEST_CASES[case]
    if case == "short-classes":  # make sure entry 0 has a label beyond the first class

        def change(m, _c=change):  # noqa: E306
            m["entries"][0]["label"] = 2
            _c(m)

    feats = _edit(made["feats"], tmp_path / "f", "manifest.json", change)
    with pytest.raises(DataError, match=re.escape(f"manifest.json: {named} is ")):
        FeatureStore.load(feats)


def test_row_beyond_its_shard_is_an_error(made, tmp_path):
    feats = _edit(made["feats"], tmp_path / "f", "manifest.json",
                  lambda m: m["entries"][0].__setitem__("row", 10_000))  # fmt: skip
    store = FeatureStore.load(feats)
    with pytest.raises(DataError, match="row 10000"):
        store.read_rows([(store.entries[0].shard, 10_000)])
