"""Bad input: unknown names, wrong or unsafe weights files, missing weights offline, bad options."""

from __future__ import annotations

import time

import pytest
import torch
from model_helpers import make
from safetensors.torch import save_file

from graft.errors import (
    ConfigError,
    GraftError,
    UnknownNameError,
    UnsafeFileError,
    WeightsNotFoundError,
)
from graft.models import WeightsMismatchError, create_model


@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("efficientnet_lit0", "efficientnet_lite0"),
        ("resnt18", "resnet18"),
        ("tv:resnt18", "tv:resnet18"),
        ("test_vitt", "test_vit"),
    ],
)
def test_unknown_name_suggests_close_matches(name, suggestion):
    with pytest.raises(
        UnknownNameError, match=rf"unknown .*model '{name}'\. Did you mean: .*\b{suggestion}\b"
    ) as err:
        create_model(name, pretrained=False)
    assert "graft models" in str(err.value)


def test_unknown_torchvision_weights_tag():
    with pytest.raises(
        UnknownNameError,
        match=r"'IMAGENET1K_V9'\. Did you mean: IMAGENET1K_V1\? Valid: DEFAULT, IMAGENET1K_V1",
    ):
        create_model("tv:resnet18.IMAGENET1K_V9", pretrained=False)


def test_unsupported_torchvision_family_has_hint():
    with pytest.raises(
        ConfigError, match=r"'squeezenet1_0' is not supported .*Supported families: .*resnet"
    ):
        create_model("tv:squeezenet1_0", pretrained=False)


def test_wrong_architecture_file_names_keys_and_shapes(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(make("test_resnet", {}).state_dict(), path)
    with pytest.raises(WeightsMismatchError) as err:
        create_model("test_efficientnet", num_classes=5, weights=path)
    msg = str(err.value)
    assert f"weights from file {path} do not fit model 'test_efficientnet'" in msg
    assert "bn1.weight file (32,) vs model (24,)" in msg
    assert "missing from the file, first: conv_stem.weight" in msg
    assert "unexpected key(s) in the file, first: conv1.0.weight" in msg


def test_truncated_state_dict_is_rejected(tmp_path):
    sd = make("test_resnet", {}).state_dict()
    sd.pop("layer4.0.conv1.weight")
    save_file(dict(sd), str(tmp_path / "w.safetensors"))
    with pytest.raises(
        WeightsMismatchError,
        match=r"1 key\(s\) missing from the file, first: layer4\.0\.conv1\.weight",
    ):
        create_model("test_resnet", weights=tmp_path / "w.safetensors")


def test_weights_not_found_offline_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsNotFoundError) as err:
        create_model("tv:resnet18", num_classes=3)
    msg = str(err.value)
    assert "no pretrained weights found for model 'tv:resnet18'" in msg
    assert (
        f"torch hub cache: {tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'} (missing)"
        in msg
    )
    assert (
        "download from https://download.pytorch.org/models/resnet18-f37072fd.pth: skipped (offline"
        in msg
    )
    assert (
        "--weights PATH; Python: weights=PATH" in msg
        and "--random-init" in msg
        and "graft models --available" in msg
    )


def test_timm_weights_not_found_mentions_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(
        WeightsNotFoundError,
        match=r"Hugging Face cache: .*models--timm--test_resnet\.r160_in1k \(not cached\)",
    ):
        create_model("test_resnet")


def test_online_failure_is_fast(monkeypatch, tmp_path):
    """Without the offline flags the network is probed with a short timeout; no hub is reachable here."""
    from graft.models import weights

    monkeypatch.delenv("GRAFT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(
        weights, "_reachable", lambda host: False
    )  # as on this machine, without relying on DNS
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError, match=r"download.pytorch.org unreachable within 3 s"):
        create_model("tv:resnet18")
    assert time.monotonic() - start < 10


def test_hf_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    src = make("test_resnet", {}, num_classes=1000)
    snap = tmp_path / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file(dict(src.state_dict()), str(snap / "model.safetensors"))
    m = create_model("test_resnet", num_classes=4)
    assert "Hugging Face cache" in m.pretrained_cfg["weights"]
    assert torch.equal(
        m.state_dict()["layer1.0.conv1.weight"], src.state_dict()["layer1.0.conv1.weight"]
    )
    full = create_model("test_resnet")  # keeps the 1000-class head, so ImageNet names come along
    assert (
        len(full.pretrained_cfg["label_names"]) == 1000
        and full.pretrained_cfg["label_names"][285] == "Egyptian cat"
    )
    from graft.models import available_models

    assert {
        "name": "test_resnet.r160_in1k",
        "source": "Hugging Face cache",
    }.items() <= available_models()[-1].items()


def test_checksum_in_file_name_is_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(
        make("tv:resnet18", {}, num_classes=1000).state_dict(), folder / "resnet18-f37072fd.pth"
    )
    with pytest.raises(
        UnsafeFileError,
        match=r"resnet18-f37072fd\.pth failed its checksum: sha256 starts with [0-9a-f]{8}, the file name says f37072fd",
    ):
        create_model("tv:resnet18")


class NotATensor:
    pass


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": NotATensor()}, path)
    with pytest.raises(
        UnsafeFileError,
        match=r"cannot be loaded as plain tensors.*\.safetensors or tensors-only \.pth",
    ):
        create_model("test_resnet", weights=path)


def test_non_state_dict_file(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(GraftError, match="holds no state dict"):
        create_model("test_resnet", weights=tmp_path / "list.pth")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_model("test_resnet", weights=tmp_path / "missing.pth")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"head": "mlpp"}, "head='mlpp' is not valid"),
        ({"head": {"type": "mlp", "hiden": 3}}, r"unknown key\(s\) \['hiden'\]"),
        ({"head": {"type": "mlp", "dropout": 1.5}}, "dropout must be in"),
        ({"num_classes": -1}, "num_classes must be a non-negative integer"),
        ({"in_chans": 0}, "in_chans must be a positive integer"),
        ({"drop_rat": 0.1}, "option not accepted by timm model 'test_resnet'"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_model("test_resnet", pretrained=False, **kwargs)


def test_hybrid_names_are_dispatched(monkeypatch):
    import graft.hybrid.source
    from graft.models import sources

    calls = []
    monkeypatch.setattr(
        graft.hybrid.source,
        "create_hybrid",
        lambda name, **kw: calls.append((name, kw)) or "hybrid",
    )
    sources.register_source("+", graft.hybrid.source.create_from_name)
    assert (
        create_model("resnet18+vit_small_patch16_224", num_classes=3, pretrained=False, in_chans=1)
        == "hybrid"
    )
    assert calls == [
        ("resnet18+vit_small_patch16_224", {"num_classes": 3, "pretrained": False, "in_chans": 1})
    ]
