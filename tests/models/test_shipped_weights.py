"""Real ImageNet weights shipped as Python packages: they load offline and classify real photos."""

from __future__ import annotations

import functools

import pytest
import torch
from PIL import Image

from graft.models import available_models, create_model, freeze, list_models
from graft.models.shipped import SHIPPED

pytestmark = pytest.mark.weights
SHIPPED_NAMES = [
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "tv:mobilenet_v2.IMAGENET1K_V1",
]


@functools.cache
def _model(name: str) -> torch.nn.Module:
    return create_model(name).eval()


def top5(model: torch.nn.Module, image: Image.Image) -> list[str]:
    """Top-5 ImageNet names, with the eval transform derived from ``model.pretrained_cfg`` (timm's)."""
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config(model=model))
    with torch.no_grad():
        logits = model(transform(image).unsqueeze(0))
    names = model.pretrained_cfg["label_names"]
    return [names[i] for i in logits[0].topk(5).indices.tolist()]


def photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)())


def test_four_backbones_are_available_offline():
    entries = {e["name"]: e for e in available_models()}
    assert set(SHIPPED_NAMES) <= set(entries)
    assert entries["efficientnet_lite1"]["input_size"] == (3, 240, 240)
    assert entries["tv:mobilenet_v2.IMAGENET1K_V1"]["path"].endswith("mobilenet_v2-b0353104.pth")
    assert list_models("efficientnet_lite*", available=True) == SHIPPED_NAMES[:3]
    assert [s.name for s in SHIPPED] == SHIPPED_NAMES


@pytest.mark.parametrize("name", ["efficientnet_lite0", "tv:mobilenet_v2"])
def test_chelsea_is_a_cat(name):
    assert any("cat" in label for label in top5(_model(name), photo("chelsea")))


def test_lite0_coffee_is_espresso():
    assert top5(_model("efficientnet_lite0"), photo("coffee"))[0] == "espresso"


def test_lite0_config_travels_with_the_model():
    m = _model("efficientnet_lite0")
    cfg = m.pretrained_cfg
    assert type(m).__name__ == "EfficientNet" and m.default_cfg is not None
    assert (
        cfg["mean"] == cfg["std"] == (0.5, 0.5, 0.5)
        and cfg["interpolation"] == "bicubic"
        and cfg["crop_pct"] == 0.875
    )
    assert (
        cfg["input_size"] == (3, 224, 224) and "efficientnet-lite0-57934424.pth" in cfg["weights"]
    )
    assert sum(p.numel() for p in m.parameters()) == 4_652_008
    assert m.graft_spec == {
        "name": "efficientnet_lite0",
        "num_classes": 1000,
        "in_chans": 3,
        "head": {"type": "linear"},
    }


@pytest.mark.parametrize("name,size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_other_lite_weights_load_and_see_a_cat(name, size):
    m = create_model(name).eval()
    assert (
        m.pretrained_cfg["input_size"] == (3, size, size)
        and name[-5:] in m.pretrained_cfg["weights"]
    )
    assert any("cat" in label for label in top5(m, photo("chelsea")))


def test_new_head_on_shipped_weights_keeps_features(caplog):
    with caplog.at_level("INFO", logger="graft"):
        m = create_model("efficientnet_lite0", num_classes=10, in_chans=1).eval()
    assert "dropped the pretrained classifier 'classifier' (1000 classes)" in caplog.text
    assert "from 3 to 1 input channels" in caplog.text
    ref = _model("efficientnet_lite0")
    gray = torch.rand(1, 1, 64, 64)
    with (
        torch.no_grad()
    ):  # summed first conv on a gray image == RGB model on the gray image repeated
        a = m.forward_head(m.forward_features(gray), pre_logits=True)
        b = ref.forward_head(ref.forward_features(gray.expand(-1, 3, -1, -1)), pre_logits=True)
    assert torch.allclose(a, b, atol=1e-4)
    assert "label_names" not in m.pretrained_cfg and m.pretrained_cfg["mean"] == (0.5,)


def test_mobilenet_groups_and_freeze():
    m = create_model("tv:mobilenet_v2.IMAGENET1K_V1", num_classes=3)
    assert (
        m.pretrained_cfg["tag"] == "IMAGENET1K_V1"
        and m.get_submodule("classifier.1") is m.get_classifier()
    )
    frozen = freeze(m, names=["features.[0-9].*"])
    assert frozen[0] == "features.0.0.weight" and frozen[-1].startswith("features.9.")
