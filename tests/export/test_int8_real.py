"""Static int8 on real weights and real images: EfficientNet-Lite0 stays within 2 points of fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graft.bundle import save_bundle
from graft.data import resolve_data_config, sample_dataset
from graft.export import Int8Options, export
from graft.export.samples import calibration_paths, iter_batches
from graft.inference import predict

SIZE = 96
HEAD_IMAGES = 300  # training images (30 per class) for the logistic-regression head


def lite0_bundle(data: Path, out: Path) -> Path:
    """Lite0 with the shipped ImageNet weights and a logistic-regression head fitted on train images."""
    from sklearn.linear_model import LogisticRegression

    from graft.bundle import load_bundle
    from graft.models import create_model

    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", num_classes=10).eval()
    classes = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    bundle = save_bundle(out, model, classes, resolve_data_config(model, image_size=SIZE))
    paths = calibration_paths(data, HEAD_IMAGES, seed=1)
    labels = [classes.index(Path(p).parent.name) for p in paths]
    with torch.inference_mode():
        x = torch.cat(list(iter_batches(load_bundle(bundle), paths, batch_size=50)))
        features = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    head = LogisticRegression(C=1.0, max_iter=1000).fit(features, np.array(labels))
    with torch.no_grad():
        model.get_classifier().weight.copy_(torch.from_numpy(head.coef_))
        model.get_classifier().bias.copy_(torch.from_numpy(head.intercept_))
    return save_bundle(out, model, classes, resolve_data_config(model, image_size=SIZE))


@pytest.mark.weights
@pytest.mark.slow
def test_static_int8_lite0_within_two_points_of_fp32(tmp_path: Path) -> None:
    data = sample_dataset("animals", tmp_path / "animals", per_class=150)  # 120 train / 30 test
    bundle = lite0_bundle(data, tmp_path / "bundle")
    result = export(bundle, quantize="int8", calibration=data, data=data, out=tmp_path / "int8")
    assert result.quantize == "int8-static" and result.int8 == Int8Options()
    assert result.accuracy["pytorch"] >= 0.8, result.summary()  # 10 classes: chance is 0.1
    assert abs(result.accuracy["change"]) <= 0.02, result.summary()
    assert "points" in result.summary()
    files = sorted(str(p) for p in (data / "test").rglob("*.png"))
    ours, ref = predict(result.path, files, top_k=1), predict(bundle, files, top_k=1)
    agreement = np.mean([a["label"] == b["label"] for a, b in zip(ours, ref, strict=True)])
    assert agreement >= 0.95, f"top-1 agreement with PyTorch {agreement:.3f}"  # measured 0.97-0.99
