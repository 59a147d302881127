"""export: ONNX parity and metadata, dynamic batch, ONNX bundles in predict/evaluate, int8, TorchScript."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from graft.bundle import BundleError, load_bundle
from graft.cli import main
from graft.errors import ConfigError, UnsafeFileError
from graft.export import ExportError, export
from graft.export.runtime import OnnxModel
from graft.inference import evaluate, predict


@pytest.fixture(scope="module")
def onnx_export(trained_bundle: Path, colour_data: Path, tmp_path_factory: pytest.TempPathFactory):
    return export(trained_bundle, data=colour_data, out=tmp_path_factory.mktemp("onnx") / "fp32")


def test_fp32_parity_and_bundle(onnx_export, trained_bundle: Path) -> None:
    assert onnx_export.parity["top1_agreement"] == 1.0 and onnx_export.parity["n"] == 16
    assert onnx_export.parity["max_abs_diff"] < 1e-4
    assert onnx_export.accuracy["change"] == 0.0 and onnx_export.accuracy["pytorch"] > 0.9
    meta = json.loads((onnx_export.path / "model.json").read_text())
    assert meta["kind"] == "onnx" and meta["export"]["quantize"] is None
    assert meta["source"]["weights_sha256"] == load_bundle(trained_bundle).meta["weights_sha256"]
    assert sorted(p.name for p in onnx_export.path.iterdir()) == ["model.json", "model.onnx"]


def test_metadata_props(onnx_export, trained_bundle: Path) -> None:
    source = load_bundle(trained_bundle)
    props = {p.key: p.value for p in onnx.load(str(onnx_export.path / "model.onnx")).metadata_props}
    assert json.loads(props["classes"]) == source.classes == ["blue", "green", "red"]
    assert json.loads(props["input_size"]) == [3, 16, 16]
    assert json.loads(props["mean"]) == [0.5, 0.5, 0.5] and json.loads(props["std"]) == [
        0.25,
        0.25,
        0.25,
    ]
    assert props["interpolation"] == "bilinear" and float(props["crop_pct"]) == 1.0
    assert json.loads(props["graft.data_config"]) == source.data_config


def test_dynamic_batch_axis(onnx_export, trained_bundle: Path) -> None:
    runner = OnnxModel(onnx_export.path / "model.onnx")
    model = load_bundle(trained_bundle).model
    for n in (1, 7):
        x = torch.randn(n, 3, 16, 16)
        out = runner(x)
        assert out.shape == (n, 3)
        with torch.inference_mode():
            assert torch.allclose(out, model(x), atol=1e-4)


def test_predict_and_evaluate_with_onnx_bundle(
    onnx_export, trained_bundle: Path, colour_data: Path
) -> None:
    ours = predict(onnx_export.path, colour_data / "test" / "red", top_k=3)
    ref = predict(trained_bundle, colour_data / "test" / "red", top_k=3)
    assert [r["label"] for r in ours] == [r["label"] for r in ref]
    assert [r["prob"] for r in ours] == pytest.approx([r["prob"] for r in ref], abs=1e-5)
    onnx_eval, torch_eval = (
        evaluate(onnx_export.path, colour_data),
        evaluate(trained_bundle, colour_data),
    )
    assert onnx_eval.accuracy == torch_eval.accuracy > 0.9
    assert onnx_eval.confusion_matrix.tolist() == torch_eval.confusion_matrix.tolist()


def test_tampered_onnx_refused(onnx_export, tmp_path: Path) -> None:
    import shutil

    copy = shutil.copytree(onnx_export.path, tmp_path / "copy")
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes()[:-100])
    with pytest.raises(UnsafeFileError, match="sha256"):
        load_bundle(copy)


@pytest.mark.parametrize("mode", ["int8-static", "int8-dynamic"])
def test_int8_within_two_points(
    trained_bundle: Path, colour_data: Path, tmp_path: Path, mode: str
) -> None:
    result = export(
        trained_bundle, quantize=mode, calibration=colour_data, data=colour_data, out=tmp_path / "q"
    )
    assert result.quantize == mode
    assert result.accuracy["pytorch"] > 0.9
    assert abs(result.accuracy["change"]) <= 0.02, result.summary()
    assert result.parity["fp32"]["top1_agreement"] == 1.0
    assert evaluate(tmp_path / "q", colour_data).accuracy == pytest.approx(
        result.accuracy["exported"]
    )
    initializers = onnx.load(str(tmp_path / "q" / "model.onnx")).graph.initializer
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    assert any(t.data_type in eight_bit for t in initializers)  # really 8-bit weights


def test_parity_failure_is_an_error(
    trained_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graft.export import onnx as export_onnx

    real = export_onnx.to_onnx

    def export_other_model(model, example, path, opset=17):
        import copy

        broken = copy.deepcopy(model)  # same architecture, head negated: a wrong export
        with torch.no_grad():
            broken.get_classifier().weight.mul_(-1)
        return real(broken, example, path, opset)

    monkeypatch.setattr(export_onnx, "to_onnx", export_other_model)
    with pytest.raises(ExportError, match="does not reproduce"):
        export(trained_bundle, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:FutureWarning")
def test_torchscript(trained_bundle: Path, tmp_path: Path) -> None:
    result = export(trained_bundle, format="torchscript", out=tmp_path / "ts")
    assert result.parity["max_abs_diff"] < 1e-5 and result.parity["top1_agreement"] == 1.0
    scripted = torch.jit.load(str(tmp_path / "ts" / "model.torchscript"))
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(scripted(x), load_bundle(trained_bundle).model(x), atol=1e-5)
    with pytest.raises(BundleError, match="deployment"):
        load_bundle(tmp_path / "ts")


def test_option_errors(trained_bundle: Path, onnx_export) -> None:
    with pytest.raises(ConfigError, match="valid: onnx, torchscript"):
        export(trained_bundle, format="tflite")
    with pytest.raises(ConfigError, match="calibration"):
        export(trained_bundle, quantize="int8-static")
    with pytest.raises(ConfigError, match="ONNX exports only"):
        export(trained_bundle, format="torchscript", quantize="int8")
    with pytest.raises(ConfigError, match="unknown quantize mode"):
        export(trained_bundle, quantize="int4")
    with pytest.raises(ConfigError, match="needs a PyTorch bundle"):
        export(onnx_export.path)


def test_cli_export(trained_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    assert main(["export", str(trained_bundle), "--quantize", "int8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "onnx int8-dynamic" in text and "top-1 agreement" in text
    assert json.loads((out / "model.json").read_text())["export"]["quantize"] == "int8-dynamic"
    assert np.isfinite(OnnxModel(out / "model.onnx")(torch.zeros(1, 3, 16, 16)).numpy()).all()
