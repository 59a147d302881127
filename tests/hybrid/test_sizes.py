"""The hybrid size rule: every branch computes at the requested image size unless told otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed

from graft.errors import ConfigError
from graft.hybrid import branch_input_sizes, create_hybrid, describe_branch_inputs
from graft.hybrid.sizes import as_hw, fit_token_branch, requested_size
from graft.models import create_model

CNNS = "test_efficientnet+test_resnet"
MIXED = "test_efficientnet+test_vit"


def _branch_input_shapes(model: torch.nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """What each branch's ``forward_features`` (what the hybrid calls) receives for ``x``."""
    seen: dict[str, tuple[int, ...]] = {}

    def recording(key: str, original: Callable) -> Callable:
        def forward_features(t: torch.Tensor) -> torch.Tensor:
            seen[key] = tuple(t.shape)
            return original(t)

        return forward_features

    for key, branch in model.branches.items():
        branch.forward_features = recording(key, branch.forward_features)
    try:
        with torch.no_grad():
            model(x)
    finally:
        for branch in model.branches.values():
            del branch.forward_features  # back to the class's method
    return seen


def test_two_cnns_built_for_64_px_get_64_px() -> None:
    model = create_hybrid(CNNS, num_classes=3, pretrained=False, image_size=64).eval()
    shapes = _branch_input_shapes(model, torch.rand(2, 3, 64, 64))
    assert shapes == {"cnn": (2, 3, 64, 64), "cnn2": (2, 3, 64, 64)}
    assert model.pretrained_cfg["input_size"] == (3, 64, 64)  # what the loader prepares
    sizes = branch_input_sizes(model)
    assert sizes == {
        "cnn": {"name": "test_efficientnet", "input_size": [64, 64], "rule": "image_size"},
        "cnn2": {"name": "test_resnet", "input_size": [64, 64], "rule": "image_size"},
    }
    assert describe_branch_inputs(model) == (
        "cnn=test_efficientnet 64x64 (image_size), cnn2=test_resnet 64x64 (image_size)"
    )


def test_without_image_size_each_branch_keeps_its_weights_size() -> None:
    model = create_hybrid(CNNS, num_classes=3, pretrained=False).eval()
    native = timm.create_model("test_efficientnet").pretrained_cfg["input_size"][1:]
    assert branch_input_sizes(model)["cnn"]["input_size"] == list(native)
    assert branch_input_sizes(model)["cnn"]["rule"] == "weights"
    assert native != (64, 64)  # so the test above measures the image_size rule


def test_vit_branch_is_resized_with_its_position_embedding_interpolated() -> None:
    torch.manual_seed(0)
    vit = timm.create_model("test_vit", num_classes=0)
    before = vit.pos_embed.detach().clone()
    old_grid = tuple(vit.patch_embed.grid_size)
    fit_token_branch("test_vit", vit, (64, 64), "image_size")
    expected = resample_abs_pos_embed(before, new_size=(4, 4), old_size=old_grid,
                                      num_prefix_tokens=1)  # fmt: skip
    torch.testing.assert_close(vit.pos_embed.detach(), expected)
    assert vit.forward_features(torch.rand(1, 3, 64, 64)).shape[1] == 17  # 4x4 patches + class

    model = create_hybrid(MIXED, num_classes=2, pretrained=False, image_size=64).eval()
    shapes = _branch_input_shapes(model, torch.rand(2, 3, 64, 64))
    assert shapes == {"cnn": (2, 3, 64, 64), "vit": (2, 3, 64, 64)}
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 2)


def test_vit_at_a_size_off_its_patch_grid_names_the_branch_and_what_it_accepts() -> None:
    with pytest.raises(ConfigError) as info:
        create_hybrid(MIXED, num_classes=2, pretrained=False, image_size=72)
    text = str(info.value)
    assert "branch 'test_vit'" in text and "16 px patches" in text
    assert "multiples of 16 px, e.g. 64 or 80" in text and "--image-size" in text
    assert "branch_inputs={test_vit: {input_size:" in text


def test_a_per_branch_size_still_overrides_on_purpose(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="graft.hybrid"):
        model = create_hybrid(
            MIXED, num_classes=2, pretrained=False, image_size=64,
            branch_inputs={"cnn": {"input_size": 48}},
        )  # fmt: skip
    sizes = branch_input_sizes(model)
    assert (sizes["cnn"]["input_size"], sizes["cnn"]["rule"]) == ([48, 48], "branch_inputs")
    assert (sizes["vit"]["input_size"], sizes["vit"]["rule"]) == ([64, 64], "image_size")
    assert "test_efficientnet computes at 48x48 px (branch_inputs), not the requested 64x64" in (
        caplog.text
    )
    shapes = _branch_input_shapes(model.eval(), torch.rand(1, 3, 64, 64))
    assert shapes == {"cnn": (1, 3, 48, 48), "vit": (1, 3, 64, 64)}

    built_small = create_hybrid(MIXED, num_classes=2, pretrained=False, image_size=64,
                                branch_kwargs={"vit": {"img_size": 32}})  # fmt: skip
    assert branch_input_sizes(built_small)["vit"] == {
        "name": "test_vit", "input_size": [32, 32], "rule": "img_size",
    }  # fmt: skip


def test_branch_inputs_alone_resize_a_vit() -> None:
    model = create_hybrid(MIXED, num_classes=2, pretrained=False,
                          branch_inputs={"vit": {"input_size": 48}})  # fmt: skip
    assert tuple(model.branches["vit"].patch_embed.img_size) == (48, 48)
    assert model(torch.rand(1, 3, 96, 96)).shape == (1, 2)


def test_rebuild_from_spec_keeps_sizes_and_predictions() -> None:
    model = create_hybrid(MIXED, num_classes=3, pretrained=False, image_size=64,
                          fusion="attention", proj_dim=16).eval()  # fmt: skip
    spec = model.graft_spec
    assert spec["image_size"] == [64, 64]
    assert {n: b["input_size"] for n, b in spec["branch_inputs"].items()} == {
        "test_efficientnet": [64, 64], "test_vit": [64, 64],
    }  # fmt: skip
    again = create_model(**spec, pretrained=False).eval()
    again.load_state_dict(model.state_dict())
    assert branch_input_sizes(again) == branch_input_sizes(model)  # rule: still image_size
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_size_rule_order_and_bad_sizes() -> None:
    cfg = {"input_size": (3, 224, 224)}
    assert requested_size({}, {}, None, cfg) == ((224, 224), "weights")
    assert requested_size({}, {}, (96, 128), cfg) == ((96, 128), "image_size")
    assert requested_size({}, {"img_size": 32}, 96, cfg) == ((32, 32), "img_size")
    assert requested_size({"input_size": [40, 48]}, {"img_size": 32}, 96, cfg) == (
        (40, 48),
        "branch_inputs",
    )
    for bad in (0, -3, "96", [96], True, [0, 5]):
        with pytest.raises(ConfigError, match="positive int or \\[height, width\\]"):
            as_hw(bad)
    assert branch_input_sizes(torch.nn.Linear(2, 2)) == {}


def test_fit_trains_branches_at_image_size_unless_overridden_and_the_bundle_records_it(
    tiny_folder, tmp_path
) -> None:
    import json

    from graft.bundle import load_bundle
    from graft.cli import main

    run = tmp_path / "run"
    args = ["fit", str(tiny_folder), "--model", MIXED, "--image-size", "32", "--weights", "none",
            "--batch-size", "8", "--workers", "0", "--no-progress", "--val-split", "0.25",
            "--recipe", "full", "--epochs", "1", "--model-arg", "fusion=concat",
            "--model-arg", "branch_inputs={cnn: {input_size: 48}}",  # on purpose: CNN at 48 px
            "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    spec = json.loads((run / "bundle" / "model.json").read_text())["spec"]
    assert spec["image_size"] == [32, 32]
    assert {n: b["input_size"] for n, b in spec["branch_inputs"].items()} == {
        "test_efficientnet": [48, 48], "test_vit": [32, 32],
    }  # fmt: skip
    model = load_bundle(run / "bundle").model
    assert {k: v["input_size"] for k, v in branch_input_sizes(model).items()} == {
        "cnn": [48, 48], "vit": [32, 32],
    }  # fmt: skip
    assert tuple(model.branches["vit"].patch_embed.img_size) == (32, 32)


def test_a_token_branch_that_cannot_be_resized_says_the_one_size_it_takes() -> None:
    class FixedViT(torch.nn.Module):  # a patch embedding, but no set_input_size
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = torch.nn.Conv2d(3, 8, 16, 16)
            self.patch_embed.img_size, self.patch_embed.patch_size = (32, 32), (16, 16)

    fixed = FixedViT()
    fit_token_branch("fixed_vit", fixed, (32, 32), "weights")  # its own size: nothing to do
    with pytest.raises(ConfigError, match="'fixed_vit' is built for 32x32 px.*accepts 32 px only"):
        fit_token_branch("fixed_vit", fixed, (64, 64), "image_size")
