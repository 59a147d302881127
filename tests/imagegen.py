"""Synthetic image folders for tests (importable as ``from imagegen import make_image_folder``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

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
