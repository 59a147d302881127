"""An ensemble exports to ONE ONNX graph equal to the torch ensemble, and graft serve accepts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import graft
from graft.bundle import load_bundle
from graft.export.runtime import OnnxModel
from graft.inference import predict
from graft.inference.inputs import expand_paths

from .conftest import CLASSES


@pytest.fixture(scope="module")
def mixed(members, colours, tmp_path_factory) -> Path:
    """Members with different input sizes (32 and 24 px) and normalisations, weights from val."""
    out = tmp_path_factory.mktemp("ens") / "ens"
    return graft.ensemble(
        [members["good"], members["small"], members["other"]], data=colours, val_split=0.25,
        out=out, rounds=10,
    ).path  # fmt: skip


def test_onnx_export_is_one_graph_matching_torch(mixed, colours, tmp_path) -> None:
    ens = load_bundle(mixed)
    result = graft.export_model(mixed, out=tmp_path / "onnx")
    assert sorted(p.name for p in result.path.iterdir() if p.suffix == ".onnx") == ["model.onnx"]
    x = torch.rand(5, 3, 32, 32)
    with torch.inference_mode():
        expected = ens.model(x).softmax(dim=1)
    got = OnnxModel(result.path / "model.onnx")(x).softmax(dim=1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    files, _ = expand_paths([str(colours)])
    a = predict(mixed, files[:6], top_k=1)
    b = predict(result.path, files[:6], top_k=1)
    assert [r["label"] for r in a] == [r["label"] for r in b]
    np.testing.assert_allclose([r["prob"] for r in a], [r["prob"] for r in b], atol=1e-5)


def test_serve_accepts_an_ensemble(mixed, colours) -> None:
    pytest.importorskip("fastapi")
    from tests.serve.conftest import start_server

    files, _ = expand_paths([str(colours)])
    files = files[:4]
    expected = predict(mixed, files, top_k=3)
    server = start_server(bundle=str(mixed), max_batch_size=4)
    try:
        with server.client() as client:
            info = client.get("/info").json()
            assert info["kind"] == "ensemble" and info["classes"] == CLASSES
            for path, want in zip(files, expected, strict=True):
                r = client.post("/predict?top_k=3", content=Path(path).read_bytes(),
                                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
                assert r.status_code == 200, r.text
                (row,) = r.json()["predictions"]
                assert row["label"] == want["label"]
                assert row["prob"] == pytest.approx(want["prob"], abs=1e-5)
    finally:
        server.stop()


def test_probe_bundle_as_member(members, colours, tmp_path) -> None:
    from graft.features import probe
    from graft.models import create_model

    torch.manual_seed(0)
    backbone = create_model("test_resnet", num_classes=0, pretrained=False).eval()
    p = probe(colours, clf="logreg", cv=2, model=backbone, image_size=32, val_split=0.25,
              out=tmp_path / "probe", batch_size=8, workers=0, progress=False)  # fmt: skip
    r = graft.ensemble([members["good"], p.bundle], data=colours, val_split=0.25,
                       out=tmp_path / "ens")  # fmt: skip
    assert sum(r.weights) == pytest.approx(1.0)
    ens = load_bundle(r.path)
    kinds = [m.kind for m in ens.extra["members"]]
    assert set(kinds) <= {"classifier", "probe"} and len(kinds) == len(r.weights)
    x = torch.rand(3, 3, 32, 32)
    exported = graft.export_model(r.path, out=tmp_path / "onnx", check_size=4).path
    with torch.inference_mode():
        expected = ens.model(x).softmax(dim=1)
    got = OnnxModel(exported / "model.onnx")(x).softmax(dim=1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
