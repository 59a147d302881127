"""Fixtures for the features tests: a tiny image folder per test and a seeded tiny backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from imagegen import make_image_folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """3 classes x 4 images of 24x24 RGB (PNG and JPEG), written fresh for each test."""
    return make_image_folder(tmp_path / "imgs", per_class=4, size=24)


@pytest.fixture
def backbone() -> torch.nn.Module:
    """A tiny ResNet without classifier, seeded, in eval mode (the same weights in every test)."""
    import graft.models as gm

    torch.manual_seed(0)
    return gm.create_model("test_resnet", num_classes=0, pretrained=False).eval()
