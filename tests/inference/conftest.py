"""Fixtures for bundle / predict / evaluate tests: a tiny timm model saved as a bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from graft.bundle import save_bundle

CLASSES = ["blue", "green", "red"]
DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
}


def tiny_model(seed: int = 0) -> torch.nn.Module:
    """A tiny timm model with a graft_spec, as graft.create_model would hand out."""
    torch.manual_seed(seed)
    model = timm.create_model("test_efficientnet", num_classes=len(CLASSES))
    model.graft_spec = {"name": "test_efficientnet", "num_classes": len(CLASSES)}
    return model.eval()


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A freshly saved bundle of an untrained tiny model."""
    return save_bundle(
        tmp_path / "bundle", tiny_model(), CLASSES, DATA_CONFIG, metrics={"val_acc": 0.5}
    )
