"""Fixtures for export tests: a tiny model trained for a few seconds on easy colour images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.bundle import save_bundle
from graft.data.dataset import ImageDataset
from graft.data.scan import scan_dataset
from graft.data.transforms import build_transforms
from graft.models import create_model

DATA_CONFIG = {
    "input_size": (3, 16, 16),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "mean": (0.5, 0.5, 0.5),
    "std": (0.25, 0.25, 0.25),
}


@pytest.fixture(scope="session")
def colour_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 colour classes: train/ (12 per class) and test/ (30 per class, other seed)."""
    from imagegen import make_image_folder

    root = tmp_path_factory.mktemp("export") / "colours"
    make_image_folder(root / "train", per_class=12, size=16, seed=0)
    make_image_folder(root / "test", per_class=30, size=16, seed=1)
    return root


def train_tiny(data: Path) -> tuple[torch.nn.Module, list[str]]:
    """test_efficientnet with its head fitted (logistic regression) on the frozen random backbone.

    Cheap (one forward pass) and a real trained classifier: well above chance on the test split.
    """
    from sklearn.linear_model import LogisticRegression

    torch.manual_seed(0)
    splits = scan_dataset(data)
    ds = ImageDataset(splits.train, build_transforms(DATA_CONFIG, train=False))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    model = create_model(
        "test_efficientnet", num_classes=len(splits.classes), pretrained=False
    ).eval()
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    head = LogisticRegression(C=10.0, max_iter=2000).fit(features, ds.labels)
    with torch.no_grad():
        model.get_classifier().weight.copy_(torch.from_numpy(head.coef_))
        model.get_classifier().bias.copy_(torch.from_numpy(head.intercept_))
    return model, splits.classes


@pytest.fixture(scope="session")
def trained_bundle(colour_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, classes = train_tiny(colour_data)
    return save_bundle(tmp_path_factory.mktemp("export") / "bundle", model, classes, DATA_CONFIG)
