"""Fixtures for bundle / predict / evaluate tests: a tiny model saved as a bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.bundle import save_bundle
from graft.models import create_model

CLASSES = ["blue", "green", "red"]
DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
}


def tiny_model(seed: int = 0) -> torch.nn.Module:
    """A tiny model from graft.models (it carries graft_spec)."""
    torch.manual_seed(seed)
    model = create_model("test_efficientnet", num_classes=len(CLASSES), pretrained=False).eval()
    with torch.no_grad():  # a spread-out head, so that outputs differ clearly between inputs
        torch.nn.init.normal_(model.get_classifier().weight, std=0.5)
    return model


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A freshly saved bundle of an untrained tiny model."""
    return save_bundle(
        tmp_path / "bundle", tiny_model(), CLASSES, DATA_CONFIG, metrics={"val_acc": 0.5}
    )
