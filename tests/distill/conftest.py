"""Fixtures for the distillation tests: a tiny teacher bundle on the tiny folder's classes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.bundle import save_bundle
from graft.data import resolve_data_config, scan_dataset
from graft.models.factory import create_model


@pytest.fixture(scope="session")
def teacher_bundle(tiny_folder_session: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny teacher bundle on the tiny folder's classes (random init: enough to exercise KD)."""
    torch.manual_seed(0)
    classes = scan_dataset(tiny_folder_session).classes
    model = create_model("test_efficientnet", num_classes=len(classes), pretrained=False)
    data_cfg = resolve_data_config(
        model, image_size=40, normalization=((0.4, 0.4, 0.4), (0.3, 0.3, 0.3))
    )
    return save_bundle(tmp_path_factory.mktemp("teacher") / "bundle", model, classes, data_cfg)
