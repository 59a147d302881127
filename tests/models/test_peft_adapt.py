"""LoRA / DoRA adapters (graft.models.peft_adapt): targets, frozen weights, merging, errors."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("peft")

import timm  # noqa: E402
from peft.tuners.lora import LoraLayer  # noqa: E402

from graft.errors import ConfigError, UnknownNameError  # noqa: E402
from graft.models.peft_adapt import (  # noqa: E402
    adapter_state,
    add_adapters,
    default_targets,
    merged_copy,
    select_targets,
)


def _vit() -> torch.nn.Module:
    return timm.create_model("test_vit", num_classes=3)


def _randomize_adapters(model: torch.nn.Module) -> None:
    """LoRA's B starts at zero (the adapted model equals the base); give it a real update."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_magnitude" in name:
                p.add_(torch.randn_like(p) * 0.05)


def test_lora_adapts_attention_and_mlp_of_every_vit_block():
    model = _vit()
    info = add_adapters(model, "lora", rank=4)
    wrapped = {n for n, m in model.named_modules() if isinstance(m, LoraLayer)}
    depth = len(model.blocks)
    expected = {f"blocks.{i}.{leaf}" for i in range(depth)
                for leaf in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")}  # fmt: skip
    assert wrapped == expected
    assert set(info.targets) == expected
    assert not isinstance(model.patch_embed.proj, LoraLayer)  # the stem stays as it is
    assert isinstance(model.get_classifier(), torch.nn.Linear)  # the head is not adapted


def test_only_adapters_and_head_train():
    model = _vit()
    add_adapters(model, "lora", rank=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {f"head.{k}" for k in ("weight", "bias")}
    assert head <= trainable
    assert all("lora_" in n for n in trainable - head)
    assert "blocks.0.attn.qkv.base_layer.weight" in model.graft_frozen_params
    assert not any(n in model.graft_frozen_params for n in trainable)


@pytest.mark.parametrize(
    ("name", "rank", "most"), [("vit_base_patch16_224", 8, 0.02), ("efficientnet_lite0", 4, 0.05)]
)
def test_real_size_models_train_a_small_fraction(name, rank, most):
    with torch.device("meta"):  # real configurations, no memory for their weights
        model = timm.create_model(name, num_classes=10)
        base = sum(p.numel() for p in model.parameters())
        info = add_adapters(model, "lora", rank=rank)
    assert info.total_params == base
    assert 0 < info.trainable_params <= most * base  # and so far under 10%
    assert info.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_merged_weights_give_the_adapted_outputs(method):
    model = timm.create_model("test_efficientnet", num_classes=3)
    add_adapters(model, method, rank=4)
    _randomize_adapters(model)
    model.eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        adapted = model(x)
        merged = merged_copy(model)
        out = merged.eval()(x)
    plain = timm.create_model("test_efficientnet", num_classes=3)
    assert not any(isinstance(m, LoraLayer) for m in merged.modules())
    assert set(merged.state_dict()) == set(plain.state_dict())  # loads without peft
    assert torch.allclose(adapted, out, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(adapted, plain.eval()(x), atol=1e-3)  # the update is real
    assert any(isinstance(m, LoraLayer) for m in model.modules())  # the original is untouched


def test_cnn_defaults_skip_depthwise_stem_and_head():
    model = timm.create_model("test_efficientnet", num_classes=3)
    targets = default_targets(model)
    modules = dict(model.named_modules())
    assert targets and all(getattr(modules[t], "groups", 1) == 1 for t in targets)
    assert "conv_stem" not in targets and "classifier" not in targets
    assert not [t for t in targets if t.endswith("conv_dw")]


def test_targets_by_name_and_glob():
    model = _vit()
    assert select_targets(model, ["qkv"]) == [
        f"blocks.{i}.attn.qkv" for i in range(len(model.blocks))
    ]
    assert select_targets(model, ["blocks.0.mlp.fc*"]) == ["blocks.0.mlp.fc1", "blocks.0.mlp.fc2"]


def test_unknown_target_suggests_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean: qkv"):
        add_adapters(_vit(), "lora", rank=4, targets=["qvk"])
    with pytest.raises(UnknownNameError, match="head"):  # the classifier is never a target
        select_targets(_vit(), ["head"])


def test_bad_method_and_rank():
    with pytest.raises(UnknownNameError, match="Did you mean: lora"):
        add_adapters(_vit(), "lroa")
    with pytest.raises(ConfigError, match="at least 1"):
        add_adapters(_vit(), "lora", rank=0)


def test_adapter_state_holds_adapters_and_head_only():
    model = _vit()
    add_adapters(model, "dora", rank=2)
    state = adapter_state(model)
    assert {"head.weight", "head.bias"} <= set(state)
    assert any("lora_magnitude_vector" in k for k in state)
    assert all("lora_" in k or k.startswith("head.") for k in state)
