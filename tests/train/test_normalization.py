"""``normalization="dataset"`` uses the training split's statistics only (no val/test leakage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.train.config import FitConfig
from graft.train.parts import _data_config


def _flat_split(root: Path, value_a: int, value_b: int) -> None:
    for cls, value in (("a", value_a), ("b", value_b)):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            pixels = np.full((16, 16, 3), value, dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")


def test_dataset_normalization_ignores_val_and_test_pixels(tmp_path: Path) -> None:
    from graft.data import scan_dataset
    from graft.models import create_model

    _flat_split(tmp_path / "train", 0, 102)  # mean 0.2, std 0.2
    _flat_split(tmp_path / "val", 255, 255)
    _flat_split(tmp_path / "test", 200, 255)
    splits = scan_dataset(tmp_path)
    assert len(splits.val) == len(splits.test) == 6
    model = create_model("test_efficientnet", num_classes=2, pretrained=False)
    cfg = FitConfig(data=str(tmp_path), normalization="dataset", image_size=16)
    data_cfg = _data_config(cfg, model, splits)
    assert list(data_cfg["mean"]) == pytest.approx([0.2, 0.2, 0.2], abs=1e-6)
    assert list(data_cfg["std"]) == pytest.approx([0.2, 0.2, 0.2], abs=1e-6)
