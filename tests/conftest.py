"""Shared fixtures: small image folders generated on the fly, and the real animals sample.

Area-specific fixtures live in ``tests/<area>/conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRAFT_OFFLINE", "1")  # tests never reach for the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def make_image_folder(root: Path, per_class: int = 8, size: int = 32, seed: int = 0) -> Path:
    """Write an ImageFolder of easy, learnable synthetic images: one dominant colour per class.

    Each image is noise around its class colour with a random bright square, saved as PNG or JPEG.
    """
    rng = np.random.default_rng(seed)
    for cls, rgb in COLORS.items():
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.clip(rng.normal(rgb, 30, size=(size, size, 3)), 0, 255).astype(np.uint8)
            y, x = rng.integers(0, size // 2, size=2)
            arr[y : y + size // 4, x : x + size // 4] = 255
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(arr).save(folder / f"{cls}_{i:03d}.{ext}")
    return root


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    """3 classes x 8 images of 32x32 RGB, PNG and JPEG mixed."""
    return make_image_folder(tmp_path / "tiny")


@pytest.fixture(scope="session")
def tiny_folder_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like :func:`tiny_folder` but shared by a whole test session (read-only use)."""
    return make_image_folder(tmp_path_factory.mktemp("tiny") / "data", per_class=12)


@pytest.fixture(scope="session")
def animals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real animals sample (from the animal-mnist package) as an ImageFolder with train/ and test/."""
    from graft.data import sample_dataset

    dest = tmp_path_factory.mktemp("animals") / "animals"
    sample_dataset("animals", dest)
    return dest
