"""Fixtures for the report tests: one tiny progressive run shared by the session (one CPU thread)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from imagegen import make_image_folder

torch.set_num_threads(1)  # the cores are shared; tiny models are faster on one thread

RUN_OPTIONS = {
    "model": "test_efficientnet",
    "weights": "none",
    "image_size": 32,
    "batch_size": 8,
    "workers": 0,
    "progress": False,
    "val_split": 0.25,
    "recipe": "progressive",
    "unfreeze": "1:+2,2:all",
    "epochs": 3,
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `graft fit` run folder: 3 classes x 8 images, 3 epochs, 3 phases (2 unfreezings).

    Its data folder lives next to it and must not be modified by tests (copy the run instead).
    """
    from graft.train import fit

    root = tmp_path_factory.mktemp("report")
    data = make_image_folder(root / "data", per_class=8, size=32)
    return fit(str(data), out=str(root / "run"), **RUN_OPTIONS).run_dir


@pytest.fixture(scope="session")
def tiny_report(tiny_run: Path) -> Path:
    """The HTML report of :func:`tiny_run` with 4 Grad-CAM overlays and up to 3 mistakes."""
    from graft.report import write_report

    return write_report(tiny_run, tiny_run / "report-test.html", gradcam=4, mistakes=3)
