"""Grad-CAM: shapes, range, the planted evidence of a model built so that only it can matter,
and the map each kind of model uses (CNN map, ViT tokens, hybrid CNN branch)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graft.report.gradcam import NoSpatialMapError, grad_cam


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Random models and images drawn the same whatever ran before (no flaky all-zero maps)."""
    torch.manual_seed(0)


H, W = 48, 64  # not square: a transposed map cannot pass
RED = (slice(4, 16), slice(8, 24))
GREEN = (slice(28, 44), slice(40, 60))
BLUE = (slice(28, 44), slice(4, 20))


class PlantedCNN(nn.Module):
    """Contract-following CNN: channel k of its 4x-downsampled map is the mean of colour k in each
    4x4 patch; logit 0 = red - blue, logit 1 = green (mean-pooled). Class 0's evidence is therefore
    exactly the red rectangle (blue counts against it); class 1's is the green one."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=4, stride=4, bias=False)
        self.fc = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            weight = torch.zeros(3, 3, 4, 4)
            for k in range(3):
                weight[k, k] = 1 / 16
            self.conv.weight.copy_(weight)
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]))
        self.num_features, self.num_classes = 3, 2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def planted_image() -> torch.Tensor:
    x = torch.zeros(1, 3, H, W)
    x[0, 0][RED] = 1.0
    x[0, 1][GREEN] = 1.0
    x[0, 2][BLUE] = 1.0
    return x


def region_mask(region: tuple[slice, slice], grow: int = 0) -> torch.Tensor:
    mask = torch.zeros(H, W, dtype=torch.bool)
    rows, cols = region
    mask[
        max(rows.start - grow, 0) : rows.stop + grow, max(cols.start - grow, 0) : cols.stop + grow
    ] = True
    return mask


@pytest.mark.parametrize(("target", "region"), [(0, RED), (1, GREEN)])
def test_gradcam_highlights_the_planted_evidence_of_each_class(target, region) -> None:
    cam = grad_cam(PlantedCNN(), planted_image(), targets=[target])
    maps = torch.from_numpy(cam.maps)
    assert maps.shape == (1, H, W) and cam.grid == (H // 4, W // 4)
    assert float(maps.min()) >= 0.0 and float(maps.max()) == pytest.approx(1.0)
    inside = maps[0][region[0], region[1]][
        3:-3, 3:-3
    ]  # the region's interior (bilinear edges aside)
    assert float(inside.min()) > 0.9  # the evidence is lit ...
    outside = maps[0][~region_mask(region, grow=3)]
    assert (
        float(outside.max()) < 0.02
    )  # ... and nothing else: not the other colours, not the background
    peak = divmod(int(maps[0].argmax()), W)
    assert region_mask(region)[peak]


def test_gradcam_defaults_to_the_predicted_class_and_checks_targets() -> None:
    x = planted_image()
    x[0, 0] *= 3  # red dominates: class 0 is predicted
    assert grad_cam(PlantedCNN(), x).targets == [0]
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(PlantedCNN(), x, targets=[5])
    with pytest.raises(ValueError, match="2 targets for a batch of 1"):
        grad_cam(PlantedCNN(), x, targets=[0, 1])


def test_gradcam_restores_the_model() -> None:
    model = PlantedCNN().train()
    grad_cam(model, planted_image())
    assert model.training and "forward_features" not in vars(model)
    assert all(p.grad is None for p in model.parameters())


def _timm(name: str, **kwargs) -> nn.Module:
    from graft.models import create_model

    return create_model(name, num_classes=3, pretrained=False, **kwargs)


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_convnext"])
def test_gradcam_on_timm_cnns_uses_the_last_feature_map(name: str) -> None:
    model = _timm(name).eval()
    cam = grad_cam(model, torch.rand(2, 3, 64, 96))
    assert cam.maps.shape == (2, 64, 96) and cam.source == "forward_features"
    assert cam.grid == tuple(model.forward_features(torch.rand(1, 3, 64, 96)).shape[-2:])
    assert cam.maps.min() >= 0.0 and cam.maps.max() <= 1.0 and cam.maps.max() == pytest.approx(1.0)


def test_gradcam_on_a_torchvision_model_through_the_adapter() -> None:
    cam = grad_cam(_timm("tv:mobilenet_v3_small").eval(), torch.rand(1, 3, 64, 64))
    assert cam.maps.shape == (1, 64, 64) and cam.source == "forward_features" and cam.grid == (2, 2)


def test_gradcam_on_a_class_token_vit_reshapes_tokens_inside_the_last_block() -> None:
    model = _timm("test_vit").eval()  # class-token pooling: final patch tokens get no gradient
    size = model.pretrained_cfg["input_size"][1]
    cam = grad_cam(model, torch.rand(2, 3, size, size))
    assert cam.maps.shape == (2, size, size)
    assert cam.grid == (size // 16, size // 16)
    last = len(model.blocks) - 1
    assert cam.source.startswith(f"model.blocks.{last}.")  # inside the last block, before attention
    assert cam.maps.min() >= 0.0 and cam.maps.max() == pytest.approx(1.0)


def test_gradcam_on_an_average_pooled_vit_uses_its_final_tokens() -> None:
    import timm

    model = timm.create_model("test_vit", num_classes=3, global_pool="avg").eval()
    size = model.pretrained_cfg["input_size"][1]
    cam = grad_cam(model, torch.rand(1, 3, size, size))
    assert cam.source == "model.forward_features" and cam.grid == (size // 16, size // 16)


def test_gradcam_on_a_hybrid_uses_the_cnn_branch() -> None:
    model = _timm("test_efficientnet+test_vit").eval()
    cam = grad_cam(model, torch.rand(1, 3, 64, 64))
    assert cam.source.startswith("branches.") and cam.source.endswith(".forward_features")
    assert cam.maps.shape == (1, 64, 64) and cam.maps.max() == pytest.approx(1.0)


class PooledOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 4), nn.Linear(4, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc1(x.flatten(1)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc2(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def test_gradcam_says_when_a_model_has_no_spatial_map() -> None:
    with pytest.raises(
        NoSpatialMapError, match=r"PooledOnly has no spatial feature map.*shape \(1, 4\)"
    ):
        grad_cam(PooledOnly(), torch.rand(1, 3, 2, 2))
