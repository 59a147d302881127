"""Extraction: pooled and spatial shapes, layers, resume, content-hash reuse, errors, CLI."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graft.errors import ConfigError, UnknownNameError
from graft.features import Features, extract

extract_module = importlib.import_module("graft.features.extraction")

KW = {"batch_size": 4, "workers": 0, "progress": False}


def test_pooled_vectors_match_the_model_contract(folder: Path, backbone) -> None:
    f = extract(folder, model=backbone, image_size=32, **KW)
    assert f.features.shape == (12, backbone.num_features)
    assert f.features.dtype == np.float32
    assert f.classes == ["blue", "green", "red"]
    assert f.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert f.splits == ["train"] * 12
    assert Path(f.files[0]).parent.name == "blue"
    # the first image through the model contract by hand gives the same vector
    from graft.data import build_transforms, load_image, resolve_data_config

    cfg = resolve_data_config(backbone.pretrained_cfg, image_size=32)
    x = build_transforms(cfg, train=False)(load_image(f.files[0], "RGB"))[None]
    with torch.inference_mode():
        ref = backbone.forward_head(backbone.forward_features(x), pre_logits=True)
    np.testing.assert_allclose(f.features[0], ref[0].numpy(), rtol=1e-4, atol=1e-5)


def test_resnet_at_256_gives_8x8_maps(tmp_path: Path, backbone) -> None:
    from imagegen import make_image_folder

    root = make_image_folder(tmp_path / "big", per_class=2, size=40)
    f = extract(root, model=backbone, pool="none", image_size=256, **KW)
    assert f.features.shape == (6, backbone.num_features, 8, 8)
    assert f.flat().shape == (6, backbone.num_features * 64)


def test_max_pool_is_the_spatial_max(folder: Path, backbone) -> None:
    maps = extract(folder, model=backbone, pool="none", image_size=64, **KW).features
    maxed = extract(folder, model=backbone, pool="max", image_size=64, **KW).features
    np.testing.assert_allclose(maxed, maps.max(axis=(2, 3)), rtol=1e-6)


@pytest.mark.parametrize(
    ("layer", "pool", "shape"),
    [
        (2, "none", (48, 8, 8)),
        ("layer2", "avg", (48,)),
        ("layer3.0", "max", (192,)),
        (-1, "none", (96, 2, 2)),
    ],
)
def test_intermediate_layers(folder: Path, backbone, layer, pool, shape) -> None:
    f = extract(folder, model=backbone, layer=layer, pool=pool, image_size=64, **KW)
    assert f.features.shape == (12, *shape)
    assert f.meta["layer"] == {2: "layer2", -1: "layer4"}.get(layer, layer)


def test_unknown_layer_suggests_names(folder: Path, backbone) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: layer3"):
        extract(folder, model=backbone, layer="layr3", **KW)
    with pytest.raises(ConfigError, match="out of range"):
        extract(folder, model=backbone, layer=9, **KW)
    with pytest.raises(UnknownNameError, match="unknown pool 'mean'"):
        extract(folder, model=backbone, pool="mean", **KW)


class _Boom(RuntimeError):
    pass


def test_interrupted_extraction_resumes_with_identical_features(
    folder: Path, backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = extract(folder, model=backbone, image_size=32, **KW)
    store = tmp_path / "store"
    real_write = extract_module.FeatureStore.write_shard
    calls = {"n": 0}

    def write_then_crash(self, features, entries):
        calls["n"] += 1
        if calls["n"] == 2:
            raise _Boom("simulated crash")
        return real_write(self, features, entries)

    monkeypatch.setattr(extract_module.FeatureStore, "write_shard", write_then_crash)
    with pytest.raises(_Boom):
        extract(folder, model=backbone, image_size=32, out=store, shard_rows=4, **KW)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["num_images"] == 4  # the first shard survived the crash
    monkeypatch.setattr(extract_module.FeatureStore, "write_shard", real_write)

    seen = _count_extracted(monkeypatch)
    resumed = extract(folder, model=backbone, image_size=32, out=store, shard_rows=4, **KW)
    assert seen == [8]  # only the images not stored yet
    assert resumed.files == full.files
    np.testing.assert_array_equal(resumed.features, full.features)
    np.testing.assert_array_equal(Features.load(store).features, full.features)


def _count_extracted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many images each extraction run sends through the model."""
    seen: list[int] = []
    real = extract_module.Runner.batches

    def counting(self, files):
        seen.append(len(files))
        yield from real(self, files)

    monkeypatch.setattr(extract_module.Runner, "batches", counting)
    return seen


def test_unchanged_files_are_reused_and_changed_ones_extracted(
    folder: Path, backbone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    first = extract(folder, model=backbone, image_size=32, out=store, **KW)
    seen = _count_extracted(monkeypatch)
    again = extract(folder, model=backbone, image_size=32, out=store, **KW)
    assert seen == [0]
    np.testing.assert_array_equal(again.features, first.features)

    changed = Path(first.files[5])
    Image.new("RGB", (24, 24), (255, 255, 0)).save(changed)
    (folder / "red" / "new_one.png").write_bytes(Path(first.files[0]).read_bytes())
    third = extract(folder, model=backbone, image_size=32, out=store, **KW)
    assert seen == [0, 1]  # the edited file only; the new copy has a known content hash
    i = third.files.index(str(changed))
    assert not np.allclose(third.features[i], first.features[5])
    j = third.files.index(str(folder / "red" / "new_one.png"))
    np.testing.assert_array_equal(third.features[j], first.features[0])
    assert len(third) == 13 and len(Features.load(store)) == 13


def test_other_settings_are_not_reused(folder: Path, backbone, tmp_path, monkeypatch) -> None:
    store = tmp_path / "store"
    extract(folder, model=backbone, image_size=32, out=store, **KW)
    seen = _count_extracted(monkeypatch)
    f = extract(folder, model=backbone, image_size=48, out=store, **KW)
    assert seen == [12]
    assert f.meta["data_config"]["input_size"] == [3, 48, 48]
    assert len(list(store.glob("shard-*.safetensors"))) == 1  # the stale shard was removed
    again = extract(folder, model=backbone, image_size=48, out=store, resume=False, **KW)
    assert seen == [12, 12]
    np.testing.assert_array_equal(again.features, f.features)
    assert [p.name for p in store.glob("shard-*.safetensors")] == ["shard-00002.safetensors"]


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_images_are_skipped(
    folder: Path, backbone, tmp_path: Path, workers: int
) -> None:
    (folder / "red" / "broken.png").write_bytes(b"not an image")
    f = extract(
        folder, model=backbone, image_size=32, out=tmp_path / "s", **{**KW, "workers": workers}
    )
    assert len(f) == 12 and str(folder / "red" / "broken.png") not in f.files
    skipped = json.loads((tmp_path / "s" / "manifest.json").read_text())["skipped"]
    assert [(Path(p).name, reason) for p, reason in skipped] == [("broken.png", "not an image")]


def test_files_that_cannot_be_opened_are_skipped_not_fatal(
    folder: Path, backbone, tmp_path: Path
) -> None:
    (folder / "red" / "loop_a.png").symlink_to(folder / "red" / "loop_b.png")
    (folder / "red" / "loop_b.png").symlink_to(folder / "red" / "loop_a.png")
    f = extract(folder, model=backbone, image_size=32, out=tmp_path / "s", **KW)
    assert len(f) == 12 and not any("loop_" in p for p in f.files)
    skipped = json.loads((tmp_path / "s" / "manifest.json").read_text())["skipped"]
    assert sorted((Path(p).name, reason) for p, reason in skipped) == [
        ("loop_a.png", "symlink loop"),
        ("loop_b.png", "symlink loop"),
    ]


def test_damaged_shard_is_a_clear_error_and_is_extracted_again(
    folder: Path, backbone, tmp_path: Path
) -> None:
    import hashlib

    from graft.errors import DataError
    from graft.features.arrays import Features as F

    first = extract(folder, model=backbone, image_size=32, out=tmp_path / "s", **KW)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    shard = tmp_path / "s" / "shard-00000.safetensors"
    assert manifest["shards"] == {shard.name: hashlib.sha256(shard.read_bytes()).hexdigest()}
    shard.write_bytes(b"\x80\x04 not safetensors")
    with pytest.raises(DataError, match=r"shard-00000\.safetensors.*graft extract DATA --out"):
        F.load(tmp_path / "s")
    again = extract(folder, model=backbone, image_size=32, out=tmp_path / "s", **KW)
    np.testing.assert_allclose(again.features, first.features, atol=1e-6)
    assert not shard.exists()  # the damaged shard was replaced by a fresh one


def test_cli_extract(folder: Path, tmp_path: Path, capsys) -> None:
    from graft.cli import main

    out = tmp_path / "cli-store"
    args = [
        "extract",
        str(folder),
        "--model",
        "test_resnet",
        "--weights",
        "none",
        "--image-size",
        "32",
    ]
    assert main([*args, "--out", str(out), "--pool", "none", "--workers", "0"]) == 0
    assert "12 images (train 12), features (96, 1, 1), 3 classes" in capsys.readouterr().out
    assert Features.load(out).features.shape == (12, 96, 1, 1)
    assert main([*args, "--layer", "nope", "--out", str(out)]) == 2
    assert "unknown layer 'nope'" in capsys.readouterr().err
