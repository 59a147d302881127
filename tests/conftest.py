"""Shared fixtures: small image folders generated on the fly, and the real animals sample.

Area-specific fixtures live in ``tests/<area>/conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from imagegen import COLORS, make_image_folder  # noqa: F401  (re-exported for tests)

os.environ.setdefault("GRAFT_OFFLINE", "1")  # tests never reach for the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state (torch, numpy, random): a red CI is reproducible."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


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
