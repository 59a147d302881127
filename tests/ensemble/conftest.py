"""Fixtures for the ensemble tests: generated colour images and three tiny member bundles.

``good`` is a tiny timm model trained for a few steps on the colours (well above chance), ``other``
is an untrained model with another normalisation, ``small`` an untrained model at a smaller input
size (so the ensemble resizes for it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from graft.bundle import save_bundle
from graft.data.dataset import ImageDataset
from graft.data.scan import scan_dataset
from graft.data.transforms import build_transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bundle_support import CLASSES, tiny_model  # noqa: E402
from imagegen import make_image_folder  # noqa: E402

CFG = {"input_size": (3, 32, 32), "interpolation": "bilinear", "crop_pct": 1.0,
       "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}  # fmt: skip
OTHER_CFG = {**CFG, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
SMALL_CFG = {**CFG, "input_size": (3, 24, 24)}


def train_briefly(model: torch.nn.Module, data: Path, steps: int = 20) -> torch.nn.Module:
    """A few Adam steps on the train split: enough to beat chance clearly on these colours."""
    splits = scan_dataset(data, val_split=0.25, seed=0)
    ds = ImageDataset(splits.train, build_transforms(CFG, train=False))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor([ds[i][1] for i in range(len(ds))])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("colours"), per_class=12, size=40)


@pytest.fixture(scope="session")
def members(tmp_path_factory: pytest.TempPathFactory, colours: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("members")
    return {
        "good": save_bundle(root / "good", train_briefly(tiny_model(0), colours), CLASSES, CFG),
        "other": save_bundle(root / "other", tiny_model(1), CLASSES, OTHER_CFG),
        "small": save_bundle(root / "small", tiny_model(2), CLASSES, SMALL_CFG),
    }
