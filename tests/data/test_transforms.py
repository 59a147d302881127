"""resolve_data_config, parse_normalization and build_transforms: sizes, config mean/std, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2 as T

from graft.data import build_transforms, parse_normalization, resolve_data_config
from graft.errors import ConfigError, UnknownNameError

CFG = {
    "input_size": (3, 224, 224),
    "interpolation": "bicubic",
    "crop_pct": 0.875,
    "crop_mode": "center",
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
}
ODD = {**CFG, "mean": (0.1, 0.3, 0.6), "std": (0.2, 0.25, 0.4), "crop_pct": 1.0}


def test_resolve_keeps_pretrained_config() -> None:
    cfg = resolve_data_config(CFG)
    assert cfg["input_size"] == (3, 224, 224) and cfg["mean"] == (0.5, 0.5, 0.5)
    assert (
        cfg["interpolation"] == "bicubic"
        and cfg["crop_pct"] == 0.875
        and cfg["normalization"] == "pretrained"
    )


def test_resolve_accepts_a_model_with_pretrained_cfg() -> None:
    class FakeModel:
        pretrained_cfg = ODD

    assert resolve_data_config(FakeModel(), image_size=(48, 64))["input_size"] == (3, 48, 64)


def test_resolve_dataset_and_explicit_normalization() -> None:
    stats = {"mean": [0.2, 0.2, 0.2], "std": [0.3, 0.3, 0.3]}
    cfg = resolve_data_config(CFG, image_size=32, normalization="dataset", dataset_stats=stats)
    assert cfg["mean"] == (0.2, 0.2, 0.2) and cfg["normalization"] == "dataset"
    cfg = resolve_data_config(CFG, normalization="0.4:0.2")
    assert (
        cfg["mean"] == (0.4,) * 3
        and cfg["std"] == (0.2,) * 3
        and cfg["normalization"] == "explicit"
    )
    with pytest.raises(ConfigError, match="graft.dataset_stats"):
        resolve_data_config(CFG, normalization="dataset")


def test_resolve_grayscale_averages_three_channel_stats() -> None:
    cfg = resolve_data_config(ODD, in_chans=1)
    assert cfg["input_size"] == (1, 224, 224)
    assert cfg["mean"] == pytest.approx((1.0 / 3,)) and cfg["std"] == pytest.approx((0.85 / 3,))


def test_parse_normalization() -> None:
    assert parse_normalization(" Pretrained ") == "pretrained"
    assert parse_normalization("dataset") == "dataset"
    assert parse_normalization("0.5,0.4,0.3:0.2,0.2,0.1") == ((0.5, 0.4, 0.3), (0.2, 0.2, 0.1))
    with pytest.raises(UnknownNameError, match="Did you mean: pretrained"):
        parse_normalization("pretrain")
    with pytest.raises(ConfigError, match="invalid number"):
        parse_normalization("a,b:c")
    with pytest.raises(ConfigError, match="1 or 3 values"):
        parse_normalization("0.5,0.5:0.2,0.2")
    with pytest.raises(ConfigError, match="positive"):
        parse_normalization("0.5:0")
    with pytest.raises(ConfigError, match=r"\[0, 1\] pixel scale"):
        parse_normalization("123.7:58.4")


@pytest.mark.parametrize("augment", ["none", "light", "standard"])
@pytest.mark.parametrize("train", [True, False])
def test_exact_shapes(augment: str, train: bool) -> None:
    cfg = resolve_data_config(CFG, image_size=(40, 56))
    t = build_transforms(cfg, train=train, augment=augment)
    for size in [(100, 70), (13, 200), (1, 1)]:
        out = t(Image.new("RGB", size, (10, 200, 30)))
        assert out.shape == (3, 40, 56) and out.dtype == torch.float32


def test_grayscale_one_channel() -> None:
    cfg = resolve_data_config(ODD, image_size=28, in_chans=1)
    t = build_transforms(cfg, train=True, augment="standard", flip=False)
    assert t(Image.new("RGB", (30, 30))).shape == (1, 28, 28)
    assert t(Image.new("L", (30, 30))).shape == (1, 28, 28)


def test_rgb_model_accepts_grayscale_images() -> None:
    out = build_transforms(resolve_data_config(CFG, image_size=16), train=False)(
        Image.new("L", (20, 20), 51)
    )
    assert out.shape == (3, 16, 16)
    torch.testing.assert_close(out, torch.full((3, 16, 16), (0.2 - 0.5) / 0.5))


def test_normalization_uses_the_config_mean_and_std() -> None:
    t = build_transforms(resolve_data_config(ODD, image_size=8), train=False)
    value = np.array([51, 102, 204])
    out = t(Image.new("RGB", (8, 8), tuple(int(v) for v in value)))
    expected = (value / 255.0 - np.array(ODD["mean"])) / np.array(ODD["std"])
    for c in range(3):
        assert torch.allclose(out[c], torch.tensor(expected[c], dtype=torch.float32), atol=1e-6)


def test_eval_resize_then_centre_crop() -> None:
    t = build_transforms(resolve_data_config(CFG, image_size=64), train=False)
    steps = [s for s in t.transforms if isinstance(s, T.Resize | T.CenterCrop)]
    assert steps[0].size == [int(64 / 0.875)] and list(steps[1].size) == [64, 64]
    assert steps[0].interpolation == T.InterpolationMode.BICUBIC


def test_presets_and_flip() -> None:
    cfg = resolve_data_config(CFG, image_size=32)
    kinds = lambda t: {type(s).__name__ for s in t.transforms}  # noqa: E731
    assert "RandomResizedCrop" not in kinds(build_transforms(cfg, train=True, augment="none"))
    assert {"RandomResizedCrop", "RandomHorizontalFlip"} <= kinds(
        build_transforms(cfg, train=True, augment="light")
    )
    assert "ColorJitter" in kinds(build_transforms(cfg, train=True, augment="standard"))
    assert "RandomHorizontalFlip" not in kinds(
        build_transforms(cfg, train=True, augment="standard", flip=False)
    )
    assert "RandomResizedCrop" not in kinds(build_transforms(cfg, train=False, augment="standard"))


def test_unknown_preset_and_interpolation() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: standard"):
        build_transforms(CFG, train=True, augment="standrd")
    with pytest.raises(UnknownNameError, match="interpolation"):
        resolve_data_config({**CFG, "interpolation": "cubic"})


def test_real_model_config_drives_the_transform() -> None:
    import timm

    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3).eval()
    cfg = resolve_data_config(model.pretrained_cfg, image_size=32)
    assert cfg["mean"] == tuple(model.pretrained_cfg["mean"])
    x = build_transforms(cfg, train=False)(Image.new("RGB", (50, 40)))
    assert model(x[None]).shape == (1, 3)
