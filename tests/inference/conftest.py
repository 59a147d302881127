"""Fixtures for bundle / predict / evaluate tests: a tiny model saved as a bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_support import CLASSES, tiny_bundle, tiny_model  # noqa: F401  (tests import them here)

DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
}


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A freshly saved bundle of an untrained tiny model."""
    return tiny_bundle(tmp_path / "bundle", DATA_CONFIG, metrics={"val_acc": 0.5})
