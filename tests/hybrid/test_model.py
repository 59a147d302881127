"""Hybrid model contract: shapes, per-branch inputs, gradients, heads, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hybrid_helpers import CNN_SIZE, VIT_SIZE, tiny_hybrid

from graft.errors import ConfigError, UnknownNameError
from graft.hybrid import BranchInput, GatedFusion, HybridModel, create_hybrid, parse_hybrid_name

CNN_DIM, VIT_DIM = 256, 64  # pooled widths of test_efficientnet and test_vit


def test_pretrained_cfg_is_plain_pixels_at_the_largest_branch_size(
    hybrid_each: HybridModel,
) -> None:
    cfg = hybrid_each.pretrained_cfg
    assert cfg["input_size"] == (3, CNN_SIZE, CNN_SIZE)
    assert cfg["mean"] == (0.0, 0.0, 0.0) and cfg["std"] == (1.0, 1.0, 1.0)
    assert cfg["interpolation"] == "bicubic" and 0 < cfg["crop_pct"] <= 1
    assert {k: v["input_size"] for k, v in cfg["branches"].items()} == {
        "cnn": [CNN_SIZE, CNN_SIZE],
        "vit": [VIT_SIZE, VIT_SIZE],
    }


@pytest.mark.parametrize(
    ("fusion", "proj_dim", "width"),
    [
        ("concat", None, CNN_DIM + VIT_DIM),
        ("concat", 32, 64),
        ("gated", None, min(256, CNN_DIM)),
        ("gated", 32, 32),
        ("attention", None, 2 * 256),
        ("attention", 24, 48),
    ],
)
def test_output_shapes(fusion: str, proj_dim: int | None, width: int) -> None:
    model = tiny_hybrid(fusion, num_classes=5, proj_dim=proj_dim).eval()
    x = torch.rand(2, 3, CNN_SIZE, CNN_SIZE)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, width) and model.num_features == width
        assert model.forward_head(feats, pre_logits=True).shape == (2, width)
        assert model.forward_head(feats).shape == (2, 5)
        assert model(x).shape == (2, 5)
        assert torch.allclose(model(x), model.forward_head(model.forward_features(x)))
    assert model.num_classes == 5 and model.get_classifier().out_features == 5


def test_each_branch_receives_its_own_size_and_normalization(hybrid_each: HybridModel) -> None:
    seen: dict[str, torch.Tensor] = {}
    stems = {
        "cnn": hybrid_each.branches["cnn"].conv_stem,
        "vit": hybrid_each.branches["vit"].patch_embed,
    }
    hooks = [
        m.register_forward_pre_hook(lambda _m, args, k=k: seen.__setitem__(k, args[0].detach()))
        for k, m in stems.items()
    ]
    x = torch.rand(2, 3, CNN_SIZE, CNN_SIZE)
    try:
        with torch.no_grad():
            hybrid_each(x)
    finally:
        for h in hooks:
            h.remove()
    imagenet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    imagenet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert seen["cnn"].shape == (2, 3, CNN_SIZE, CNN_SIZE)
    torch.testing.assert_close(seen["cnn"], (x - imagenet_mean) / imagenet_std)
    assert seen["vit"].shape == (2, 3, VIT_SIZE, VIT_SIZE)
    small = F.interpolate(x, size=(VIT_SIZE, VIT_SIZE), mode="bicubic", align_corners=False)
    torch.testing.assert_close(seen["vit"], (small - 0.5) / 0.5)


def test_constant_image_is_normalised_per_branch(hybrid_each: HybridModel) -> None:
    x = torch.full((1, 3, CNN_SIZE, CNN_SIZE), 0.6)
    inputs = hybrid_each.branch_inputs(x)
    cnn = inputs["cnn"][0, :, 0, 0]
    torch.testing.assert_close(
        cnn, (0.6 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    )
    torch.testing.assert_close(inputs["vit"], torch.full((1, 3, VIT_SIZE, VIT_SIZE), 0.2))


@pytest.mark.parametrize("fusion", ["concat", "gated", "attention"])
def test_gradients_reach_both_branches_and_the_fusion(fusion: str) -> None:
    model = tiny_hybrid(fusion).train()
    x = torch.rand(4, 3, CNN_SIZE, CNN_SIZE, requires_grad=True)
    loss = F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    parts = ["branches.cnn.", "branches.vit.", "head."] + (
        ["fusion."] if fusion != "concat" else []
    )
    for part in parts:  # concat without proj_dim has no parameters of its own
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)]
        assert grads and all(g is not None for g in grads), part
        assert sum(float(g.abs().sum()) for g in grads) > 0, part
    assert float(x.grad.abs().sum()) > 0  # the in-model resize/normalize is differentiable


def test_gate_starts_equal_and_sums_to_one() -> None:
    fuse = GatedFusion([CNN_DIM, VIT_DIM], proj_dim=16)
    weights = fuse.gate_weights([torch.randn(3, CNN_DIM), torch.randn(3, VIT_DIM)])
    torch.testing.assert_close(weights, torch.full((3, 2), 0.5))
    with torch.no_grad():
        fuse.gate.weight.normal_()
    weights = fuse.gate_weights([torch.randn(3, CNN_DIM), torch.randn(3, VIT_DIM)])
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert not torch.allclose(weights, torch.full((3, 2), 0.5))


def test_three_branches_concat() -> None:
    model = create_hybrid(
        "test_efficientnet+test_resnet+test_vit",
        num_classes=2,
        pretrained=False,
        branch_kwargs={"test_vit": {"img_size": 32}},
        branch_inputs={"test_efficientnet": {"input_size": 40}, "test_resnet": {"input_size": 32}},
    ).eval()
    assert list(model.branches) == ["cnn", "cnn2", "vit"]
    assert model.branch_names == {
        "cnn": "test_efficientnet",
        "cnn2": "test_resnet",
        "vit": "test_vit",
    }
    assert model.num_features == CNN_DIM + 96 + VIT_DIM  # test_resnet pools to 96
    assert model(torch.rand(1, 3, 40, 40)).shape == (1, 2)
    with pytest.raises(ConfigError, match="exactly one CNN"):
        create_hybrid(
            "test_efficientnet+test_resnet+test_vit",
            num_classes=2,
            pretrained=False,
            fusion="attention",
            branch_kwargs={"test_vit": {"img_size": 32}},
        )


def test_reset_classifier_and_no_head() -> None:
    model = tiny_hybrid("gated", proj_dim=16).eval()
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.graft_spec["num_classes"] == 7
    assert model(torch.rand(1, 3, CNN_SIZE, CNN_SIZE)).shape == (1, 7)
    model.reset_classifier(0)
    assert model(torch.rand(1, 3, CNN_SIZE, CNN_SIZE)).shape == (1, 16)


def test_mlp_head() -> None:
    model = tiny_hybrid("concat", head={"type": "mlp", "hidden": 8}).eval()
    assert model.graft_spec["head"] == {"type": "mlp", "hidden": 8, "dropout": 0.2}
    assert model(torch.rand(1, 3, CNN_SIZE, CNN_SIZE)).shape == (1, 3)


def test_branch_input_skips_same_size_and_matches_reference() -> None:
    prep = BranchInput((16, 16), "bilinear", mean=(0.5,) * 3, std=(0.25,) * 3)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(prep(x), (x - 0.5) / 0.25)
    big = torch.rand(2, 3, 40, 24)
    ref = F.interpolate(big, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(prep(big), (ref - 0.5) / 0.25)
    with pytest.raises(UnknownNameError, match="bicubic"):
        BranchInput((16, 16), "bicubc")


def test_bad_names_and_options_raise_helpful_errors() -> None:
    with pytest.raises(ConfigError, match="two or more"):
        parse_hybrid_name("test_vit+")
    with pytest.raises(UnknownNameError, match="Did you mean: gated"):
        tiny_hybrid("gatd")
    with pytest.raises(UnknownNameError, match="Did you mean: test_vit"):
        create_hybrid(
            "test_efficientnet+test_vit",
            num_classes=2,
            pretrained=False,
            branch_kwargs={"test_vti": {"img_size": 32}},
        )
    with pytest.raises(UnknownNameError, match="input_size"):
        create_hybrid(
            "test_efficientnet+test_vit",
            num_classes=2,
            pretrained=False,
            branch_inputs={"test_vit": {"input_sise": 32}},
        )
    with pytest.raises(ConfigError, match="exactly one CNN"):
        create_hybrid(
            "test_efficientnet+test_resnet",
            num_classes=2,
            pretrained=False,
            fusion="attention",
            branch_inputs={
                "test_efficientnet": {"input_size": 32},
                "test_resnet": {"input_size": 32},
            },
        )


def test_vit_at_a_size_it_cannot_take_gives_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="test_vit.*multiples of 16 px, e.g. 32 or 48"):
        create_hybrid(
            "test_efficientnet+test_vit",
            num_classes=2,
            pretrained=False,
            branch_inputs={"test_vit": {"input_size": 40}},  # not a multiple of the patch size,
        )


def test_grayscale_input_reaches_every_branch() -> None:
    model = tiny_hybrid("attention", in_chans=1, proj_dim=16).eval()
    assert model.pretrained_cfg["input_size"] == (1, CNN_SIZE, CNN_SIZE)
    assert model.pretrained_cfg["mean"] == (0.0,)
    assert [len(v["mean"]) for v in model.pretrained_cfg["branches"].values()] == [1, 1]
    with torch.no_grad():
        assert model(torch.rand(2, 1, CNN_SIZE, CNN_SIZE)).shape == (2, 3)
