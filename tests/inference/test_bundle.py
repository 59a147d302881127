"""Bundles: round trip, atomic replacement, corrupt/partial folders, and pickles refused unexecuted."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from graft.bundle import (
    BundleError,
    load_bundle,
    read_meta,
    register_kind,
    registered_kinds,
    save_bundle,
)
from graft.errors import UnknownNameError, UnsafeFileError

from .conftest import CLASSES, DATA_CONFIG, tiny_model


def test_round_trip_identical_logits(bundle_dir: Path) -> None:
    model = tiny_model()
    x = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        expected = model(x)
    bundle = load_bundle(bundle_dir)
    assert bundle.kind == "classifier"
    assert bundle.classes == CLASSES
    assert not bundle.model.training
    assert torch.equal(bundle.logits(x), expected)  # bit for bit


def test_model_json_contents(bundle_dir: Path) -> None:
    meta = json.loads((bundle_dir / "model.json").read_text())
    assert meta["format"] == "graft-bundle" and meta["format_version"] == 1
    assert meta["spec"] == load_bundle(bundle_dir).model.graft_spec
    assert meta["spec"]["name"] == "test_efficientnet" and meta["spec"]["num_classes"] == 3
    assert meta["data_config"]["input_size"] == [3, 32, 32]
    assert meta["data_config"]["normalization"] == "pretrained"
    assert meta["metrics"] == {"val_acc": 0.5}
    assert len(meta["weights_sha256"]) == 64
    assert set(meta["files"]) == {"model.safetensors"}
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["model.json", "model.safetensors"]


def test_shared_tensors_saved(tmp_path: Path) -> None:
    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(4, 4)
            self.b = torch.nn.Linear(4, 4)
            self.b.weight = self.a.weight  # shared parameter
            self.num_classes = 4

        def forward(self, x):
            return self.b(self.a(x))

    from graft import bundle as bundle_mod

    model = Tied()
    path = save_bundle(tmp_path / "t", model, list("abcd"), DATA_CONFIG, spec={"name": "tied"})
    fresh = Tied()
    bundle_mod.load_weights(fresh, path / "model.safetensors")
    assert torch.equal(fresh.a.weight, model.a.weight) and fresh.b.weight is fresh.a.weight


def test_replacing_an_existing_bundle(bundle_dir: Path) -> None:
    save_bundle(bundle_dir, tiny_model(seed=1), CLASSES, DATA_CONFIG)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(load_bundle(bundle_dir).logits(x), tiny_model(seed=1)(x))
    assert [p.name for p in bundle_dir.parent.iterdir() if p.name.startswith(".")] == []


def test_refuses_to_overwrite_a_non_bundle_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle"):
        save_bundle(tmp_path / "mine", tiny_model(), CLASSES, DATA_CONFIG)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_class_count_mismatch(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="3 outputs but 2 class names"):
        save_bundle(tmp_path / "b", tiny_model(), ["a", "b"], DATA_CONFIG)


def test_model_without_spec(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="graft_spec"):
        save_bundle(tmp_path / "b", torch.nn.Linear(2, 2), ["a", "b"], DATA_CONFIG)


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graft.bundle import saving

    def boom(model, path):
        path.write_bytes(b"half")
        raise OSError("simulated crash")

    monkeypatch.setattr(saving, "_save_state", boom)
    with pytest.raises(OSError, match="simulated"):
        save_bundle(tmp_path / "b", tiny_model(), CLASSES, DATA_CONFIG)
    assert list(tmp_path.iterdir()) == []


def test_truncated_weights_refused(bundle_dir: Path) -> None:
    weights = bundle_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UnsafeFileError, match="corrupt, truncated"):
        load_bundle(bundle_dir)


def test_flipped_byte_refused(bundle_dir: Path) -> None:
    weights = bundle_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UnsafeFileError, match="sha256"):
        load_bundle(bundle_dir)


def test_missing_files(bundle_dir: Path) -> None:
    (bundle_dir / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="model.safetensors is missing"):
        load_bundle(bundle_dir)
    (bundle_dir / "model.json").unlink()
    with pytest.raises(BundleError, match="model.json is missing"):
        load_bundle(bundle_dir)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(bundle_dir.parent / "nope")


def test_truncated_json_and_wrong_version(bundle_dir: Path) -> None:
    meta_path = bundle_dir / "model.json"
    text = meta_path.read_text()
    meta = json.loads(text)
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="format_version 99"):
        load_bundle(bundle_dir)
    meta_path.write_text(text[: len(text) // 2])
    with pytest.raises(Exception, match="not valid JSON"):
        load_bundle(bundle_dir)


def test_unknown_kind_suggests(bundle_dir: Path) -> None:
    meta = read_meta(bundle_dir)
    meta["kind"] = "clasifier"
    (bundle_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(UnknownNameError, match="Did you mean: classifier"):
        load_bundle(bundle_dir)


def test_register_kind(bundle_dir: Path) -> None:
    seen = {}

    def loader(path, meta, device):
        seen["meta"] = meta
        return "custom"

    register_kind("test-custom", loader)
    with pytest.raises(ValueError, match="already registered"):
        register_kind("test-custom", lambda p, m, d: None)
    assert "test-custom" in registered_kinds()
    meta = read_meta(bundle_dir)
    meta["kind"] = "test-custom"
    (bundle_dir / "model.json").write_text(json.dumps(meta))
    assert load_bundle(bundle_dir) == "custom"
    assert seen["meta"]["classes"] == CLASSES


class _Evil:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt"])
def test_malicious_pickle_refused_unexecuted(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(UnsafeFileError, match="pickle") as info:
        load_bundle(evil)
    assert "arbitrary code" in str(info.value)
    assert not marker.exists()
    pickle.loads(evil.read_bytes())  # the planted file really is armed
    assert marker.exists()


def test_pickle_planted_as_safetensors_refused(bundle_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = bundle_dir / "model.safetensors"
    weights.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(UnsafeFileError):
        load_bundle(bundle_dir)
    # even with the checksum forged, safetensors parses no pickle
    from graft.io import sha256_file

    meta = read_meta(bundle_dir)
    meta["files"]["model.safetensors"] = meta["weights_sha256"] = sha256_file(weights)
    (bundle_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="not a readable safetensors"):
        load_bundle(bundle_dir)
    assert not marker.exists()


def test_data_config_kept_and_file_paths_accepted(tmp_path: Path) -> None:
    cfg = {**DATA_CONFIG, "crop_mode": "squash"}
    path = save_bundle(tmp_path / "b", tiny_model(), CLASSES, cfg)
    for target in (path, path / "model.json", path / "model.safetensors"):
        bundle = load_bundle(target)
        assert bundle.data_config["crop_mode"] == "squash" and bundle.data_config["input_size"] == [
            3,
            32,
            32,
        ]
    with pytest.raises(BundleError, match="lacks"):
        save_bundle(tmp_path / "c", tiny_model(), CLASSES, {"input_size": (3, 8, 8)})
