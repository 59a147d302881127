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
from graft.errors import ConfigError, UnknownNameError, UnsafeFileError
from graft.export import ExportError, Int8Options, export
from graft.export.runtime import OnnxModel
from graft.export.samples import calibration_paths
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
    assert result.parity["top1_agreement"] >= 0.9, result.summary()  # 16 real test images
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


def _first_conv_input_producer(path: Path) -> str:
    graph = onnx.load(str(path)).graph
    producers = {out: n.op_type for n in graph.node for out in n.output}
    conv = next(n for n in graph.node if n.op_type == "Conv")
    return producers.get(conv.input[0], "graph input")


def _weight_types(path: Path) -> dict[str, int]:
    """ONNX data type of each Conv/Gemm's weight, through its DequantizeLinear (node name -> type)."""
    graph = onnx.load(str(path)).graph
    producers = {out: n for n in graph.node for out in n.output}
    initializers = {t.name: t.data_type for t in graph.initializer}
    types = {}
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm"):
            dq = producers.get(node.input[1])
            source = dq.input[0] if dq is not None else node.input[1]
            types[node.name] = initializers[source]
    return types


def _max_code(path: Path, data_type: int) -> int:
    graph = onnx.load(str(path)).graph
    arrays = [onnx.numpy_helper.to_array(t) for t in graph.initializer if t.data_type == data_type]
    return int(max(np.abs(a.astype(np.int64)).max() for a in arrays if a.ndim > 1))


def test_int8_static_default_uint8_weights(
    trained_bundle: Path, colour_data: Path, tmp_path: Path
) -> None:
    result = export(trained_bundle, quantize="int8", calibration=colour_data, out=tmp_path / "a")
    assert result.int8 == Int8Options() and result.int8.weights == "uint8"
    assert set(_weight_types(result.path / "model.onnx").values()) == {onnx.TensorProto.UINT8}
    assert _max_code(result.path / "model.onnx", onnx.TensorProto.UINT8) == 255  # full 8 bits
    assert _first_conv_input_producer(result.path / "model.onnx") == "DequantizeLinear"
    assert "(minmax on 256 images, uint8 weights, fp32: none)" in result.summary()


def test_int8_weights_7bit_signed_with_unsigned_stem(
    trained_bundle: Path, colour_data: Path, tmp_path: Path
) -> None:
    fast = Int8Options(weights="int8")
    result = export(
        trained_bundle, quantize="int8", calibration=colour_data, out=tmp_path / "a", int8=fast
    )
    model = result.path / "model.onnx"
    types = list(_weight_types(model).values())
    assert types[0] == onnx.TensorProto.UINT8  # the stem
    assert set(types[1:]) == {onnx.TensorProto.INT8}  # every other Conv and the classifier
    assert _max_code(model, onnx.TensorProto.INT8) <= 64  # 7-bit: no saturation in u8 x s8 kernels
    assert _max_code(model, onnx.TensorProto.UINT8) <= 128  # the stem keeps the same range
    assert "int8 weights (uint8: stem), fp32: none" in result.summary()


def test_int8_static_options_applied_and_recorded(
    trained_bundle: Path, colour_data: Path, tmp_path: Path
) -> None:
    options = Int8Options(
        calibration_images=10,
        method="entropy",
        weights="int8",
        uint8_layers=(),
        keep_fp32=("stem",),
    )
    result = export(
        trained_bundle, quantize="int8", calibration=colour_data, out=tmp_path / "b", int8=options
    )
    assert _first_conv_input_producer(result.path / "model.onnx") == "graph input"
    types = list(_weight_types(result.path / "model.onnx").values())
    assert types[0] == onnx.TensorProto.FLOAT and set(types[1:]) == {onnx.TensorProto.INT8}
    meta = json.loads((result.path / "model.json").read_text())["export"]
    assert meta["quantize"] == "int8-static" and meta["int8"] == {
        "calibration_images": 10,
        "method": "entropy",
        "weights": "int8",
        "uint8_layers": [],
        "keep_fp32": ["stem"],
        "per_channel": True,
    }
    assert "entropy on 10 images, int8 weights, fp32: stem" in result.summary()


def test_int8_option_errors(trained_bundle: Path, colour_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: minmax"):
        Int8Options(method="minmx")
    with pytest.raises(UnknownNameError, match="uint8"):
        Int8Options(weights="u8")
    with pytest.raises(ConfigError, match="at least 1"):
        Int8Options(calibration_images=0)
    with pytest.raises(UnknownNameError, match="Did you mean: stem"):
        export(trained_bundle, quantize="int8", calibration=colour_data, out=tmp_path / "x",
               int8=Int8Options(keep_fp32=("stme",)))  # fmt: skip
    with pytest.raises(ConfigError, match="static int8"):
        export(trained_bundle, quantize="int8-dynamic", int8=Int8Options(), out=tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_calibration_images_stratified_from_train(colour_data: Path) -> None:
    paths = calibration_paths(colour_data, 9)
    assert len(paths) == 9 and all(Path(p).parts[-3] == "train" for p in paths)
    assert sorted(Path(p).parent.name for p in paths) == ["blue"] * 3 + ["green"] * 3 + ["red"] * 3
    assert paths == calibration_paths(colour_data, 9)  # seeded
    assert len(calibration_paths(colour_data, 1000)) == 36  # all 12 x 3 training images


def test_same_padding_frozen_for_export(tmp_path: Path) -> None:
    import timm

    from graft.export.onnx import to_onnx
    from graft.export.static_pad import freeze_same_padding

    model = timm.create_model("test_efficientnet", pad_type="same", num_classes=3).eval()
    assert any(type(m).__name__ == "Conv2dSame" for m in model.modules())
    fixed = freeze_same_padding(model, (3, 37, 30))
    assert not any(type(m).__name__ == "Conv2dSame" for m in fixed.modules())
    x = torch.randn(2, 3, 37, 30)
    with torch.inference_mode():
        assert torch.equal(model(x), fixed(x))
    ops = {n.op_type for n in onnx.load(str(to_onnx(fixed, x, tmp_path / "m.onnx"))).graph.node}
    assert "Shape" not in ops and "Ceil" not in ops  # no run-time padding arithmetic left
    assert torch.allclose(OnnxModel(tmp_path / "m.onnx")(x), fixed(x), atol=1e-4)
    plain = create_plain()
    assert freeze_same_padding(plain, (3, 16, 16)) is plain  # nothing to do: same module


def create_plain() -> torch.nn.Module:
    from graft.models import create_model

    return create_model("test_efficientnet", num_classes=3, pretrained=False)


def test_cli_static_int8_options(
    trained_bundle: Path, colour_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cli-static"
    args = ["export", str(trained_bundle), "--quantize", "int8", "--calibration", str(colour_data)]
    args += [
        "--calibration-images",
        "12",
        "--keep-fp32",
        "stem,classifier",
        "--uint8-layers",
        "none",
    ]
    assert main([*args, "--out", str(out)]) == 0
    assert "onnx int8-static (minmax on 12 images, uint8 weights, fp32: stem, classifier)" in (
        capsys.readouterr().out
    )
    int8 = json.loads((out / "model.json").read_text())["export"]["int8"]
    assert int8["keep_fp32"] == ["stem", "classifier"] and int8["calibration_images"] == 12
    assert int8["uint8_layers"] == [] and int8["method"] == "minmax"
    assert main(["export", str(trained_bundle), "--calibration-method", "entropy"]) == 2
    assert "static int8" in capsys.readouterr().err
