"""``export``: a PyTorch bundle to an ONNX (optionally int8) or TorchScript bundle, verified.

The ONNX graph has a dynamic batch axis (input ``input``: ``(batch, C, H, W)`` float32, normalised;
output ``logits``: ``(batch, num_classes)``). Its ``metadata_props`` carry the preprocessing and the
class names, so the file is usable without graft::

    classes, input_size, mean, std, interpolation, crop_pct, normalization, layout, graft.data_config

Every export is checked with onnxruntime (or ``torch.jit.load``) against the PyTorch model on sample
inputs (real images when ``data`` or ``calibration`` is given, else seeded random tensors): fp32 must
agree on the top-1 class for every input and stay within 1e-3 of the logit scale, or the export fails.
int8 exports report the same numbers and, with labelled ``data``, the accuracy change.

Example:
    >>> r = export_model("runs/pets/bundle", quantize="int8", calibration="data/pets", data="data/pets")  # doctest: +SKIP
    >>> r.summary()  # doctest: +SKIP
    'onnx int8-static -> runs/pets/bundle-onnx-int8 (4.9 MB): top-1 agreement 99.0% ...'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft.bundle import Bundle, load_bundle, write_bundle
from graft.errors import ConfigError, GraftError
from graft.export.options import Int8Options
from graft.export.parity import compare, within_tolerance
from graft.export.quantize import quantize_model, resolve_mode
from graft.export.runtime import INPUT_NAME, ONNX_FILE, OUTPUT_NAME, TORCHSCRIPT_FILE, OnnxModel
from graft.export.samples import calibration_paths, check_batch, iter_batches
from graft.export.static_pad import freeze_same_padding
from graft.log import get_logger

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17
log = get_logger("graft.export")


class ExportError(GraftError, RuntimeError):
    """The exported model does not reproduce the PyTorch model."""


@dataclass
class ExportResult:
    """Where the export went and how closely it matches the PyTorch model."""

    path: Path
    format: str
    quantize: str | None
    parity: dict[str, Any]
    size_bytes: int
    seconds: float
    accuracy: dict[str, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    int8: Int8Options | None = None

    def summary(self) -> str:
        """One line for the terminal."""
        p = self.parity
        text = (
            f"{self.format}{' ' + self.quantize if self.quantize else ''}"
            f"{f' ({self.int8.describe()})' if self.int8 else ''} -> {self.path} "
            f"({self.size_bytes / 1e6:.1f} MB): top-1 agreement {p['top1_agreement']:.1%} on {p['n']} inputs, "
            f"max abs logit difference {p['max_abs_diff']:.2e}"
        )
        if self.accuracy:
            a = self.accuracy
            text += f"; accuracy {a['pytorch']:.4f} -> {a['exported']:.4f} ({a['change'] * 100:+.2f} points)"
        return text


def export_model(
    bundle: Bundle | str | os.PathLike,
    format: str = "onnx",
    quantize: str | None = None,
    calibration: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    check_size: int = 16,
    int8: Int8Options | None = None,
) -> ExportResult:
    """Export a PyTorch bundle; see the module docstring.

    ``quantize``: ``None``, ``"int8"`` (static when ``calibration`` is given, else dynamic),
    ``"int8-dynamic"`` or ``"int8-static"``. ``data``: labelled images (ImageFolder or folder with
    ``test/``) on which the accuracy of the PyTorch and the exported model are compared.
    ``out`` defaults to ``<bundle>-onnx`` (``-onnx-int8``, ``-torchscript``) next to the bundle.
    ``int8``: settings of static quantisation (:class:`graft.export.Int8Options`; the defaults:
    MinMax on 256 train images, an equal share per class, uint8 weights per channel; see
    :mod:`graft.export.quantize` for what was measured).

    Example:
        >>> export_model("runs/pets/bundle", out="deploy/pets").path  # doctest: +SKIP
        PosixPath('deploy/pets')
    """
    start = time.perf_counter()
    if format not in FORMATS:
        raise ConfigError(f"unknown export format '{format}'; valid: {', '.join(FORMATS)}")
    source = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    model = _torch_model(source)
    mode = resolve_mode(quantize, calibration is not None)
    if int8 is not None and mode != "int8-static":
        raise ConfigError(
            f"int8 calibration settings apply to static int8 quantisation, but this export is "
            f"{mode or 'fp32'}; "
            "pass quantize='int8' with calibration=DATA (--quantize int8 --calibration DATA)."
        )
    int8 = (int8 or Int8Options()) if mode == "int8-static" else None
    if format == "torchscript" and mode:
        raise ConfigError(
            "int8 quantisation is available for ONNX exports only; use --format onnx --quantize int8"
        )
    out = Path(out) if out else _default_out(source.path, format, mode)
    x = check_batch(source, data if data is not None else calibration, n=check_size)
    with tempfile.TemporaryDirectory(prefix="graft-export-") as work:
        if format == "onnx":
            file, parity = _export_onnx(
                source, model, x, Path(work), mode, calibration, opset, int8
            )
            name = ONNX_FILE
        else:
            file, parity = _export_torchscript(model, x, Path(work))
            name = TORCHSCRIPT_FILE
        meta = _meta(source, format, mode, opset, parity, int8)
        write_bundle(out, {name: lambda dst: shutil.copyfile(file, dst)}, meta)
    result = ExportResult(
        out, format, mode, parity, (out / name).stat().st_size, 0.0, meta=meta, int8=int8
    )
    if data is not None and format == "onnx":
        result.accuracy = _accuracy_change(source, out, data)
    result.seconds = time.perf_counter() - start
    log.info("export: %s", result.summary())
    return result


def _torch_model(source: Bundle) -> nn.Module:
    if not isinstance(source.model, nn.Module):
        raise ConfigError(
            f"{source.path} is a '{source.kind}' bundle; export needs a PyTorch bundle (kind 'classifier', "
            "written by graft fit). Export the bundle it came from."
        )
    return source.model.cpu().eval()


def _default_out(path: Path, format: str, mode: str | None) -> Path:
    suffix = f"-{format}" + ("-int8" if mode else "")
    return path.with_name(path.name + suffix)


def _export_onnx(
    source: Bundle,
    model: nn.Module,
    x: torch.Tensor,
    work: Path,
    mode: str | None,
    calibration,
    opset: int,
    int8: Int8Options | None = None,
) -> tuple[Path, dict[str, Any]]:
    fp32 = work / "fp32.onnx"
    to_onnx(_static_padding(model, source.data_config["input_size"]), x[:2], fp32, opset)
    reference = _reference_logits(model, x)
    fp32_parity = compare(reference, OnnxModel(fp32)(x))
    _check_dynamic_batch(fp32, x)
    if not within_tolerance(fp32_parity):
        raise ExportError(
            f"the ONNX model does not reproduce the PyTorch model: top-1 agreement "
            f"{fp32_parity['top1_agreement']:.1%}, max abs difference {fp32_parity['max_abs_diff']:.3g} "
            f"(logit scale {fp32_parity['logit_scale']:.3g}). Try another --opset, or report the model name."
        )
    final = fp32
    if mode:
        batches = None
        if mode == "int8-static":
            paths = calibration_paths(calibration, int8.calibration_images)
            batches = (b.numpy() for b in iter_batches(source, paths))
        final = quantize_model(fp32, work / "int8.onnx", mode, batches, int8)
    add_metadata(final, source)
    parity = compare(reference, OnnxModel(final)(x))
    parity["fp32"] = fp32_parity if mode else None
    return final, parity


def _static_padding(model: nn.Module, input_size: list[int]) -> nn.Module:
    """Fixed "SAME" paddings; an ensemble fixes each member for its own input size."""
    map_members = getattr(model, "map_members", None)
    if map_members is not None:
        return map_members(freeze_same_padding, int(input_size[0]))
    return freeze_same_padding(model, input_size)


def to_onnx(
    model: nn.Module, example: torch.Tensor, path: Path, opset: int = DEFAULT_OPSET
) -> Path:
    """Export ``model`` with a dynamic batch axis (TorchScript-based exporter, no extra packages)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            os.fspath(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    return path


def add_metadata(path: Path, source: Bundle) -> None:
    """Store preprocessing and classes in the ONNX file's ``metadata_props``."""
    import onnx

    from graft import __version__

    proto = onnx.load(os.fspath(path))
    cfg = source.data_config
    props = {
        "classes": json.dumps(source.classes),
        "graft.classes": json.dumps(source.classes),
        "input_size": json.dumps(list(cfg["input_size"])),
        "mean": json.dumps(list(cfg["mean"])),
        "std": json.dumps(list(cfg["std"])),
        "interpolation": str(cfg.get("interpolation", "bilinear")),
        "crop_pct": str(cfg.get("crop_pct", 1.0)),
        "crop_mode": str(cfg.get("crop_mode", "center")),
        "normalization": str(cfg.get("normalization", "pretrained")),
        "layout": "NCHW float32; RGB in [0,1], resize shorter side to size/crop_pct, centre crop, (x - mean) / std",
        "graft.data_config": json.dumps(cfg),
        "graft.version": __version__,
        "graft.model": str(source.meta.get("spec", {}).get("name", "")),
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "graft"
    onnx.save(proto, os.fspath(path))


def _reference_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x).float()


def _check_dynamic_batch(path: Path, x: torch.Tensor) -> None:
    runner = OnnxModel(path)
    for n in (1, len(x)):
        out = runner(x[:n])
        if out.shape[0] != n:
            raise ExportError(
                f"the ONNX model returned batch {out.shape[0]} for input batch {n}: no dynamic batch axis"
            )


def _export_torchscript(
    model: nn.Module, x: torch.Tensor, work: Path
) -> tuple[Path, dict[str, Any]]:
    path = work / TORCHSCRIPT_FILE
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x[:2], check_trace=False)
        torch.jit.save(traced, os.fspath(path))
        loaded = torch.jit.load(os.fspath(path))  # our own file, just written
        parity = compare(_reference_logits(model, x), loaded(x))
    if not within_tolerance(parity):
        raise ExportError(f"the TorchScript model does not reproduce the PyTorch model: {parity}")
    return path, parity


def _meta(
    source: Bundle,
    format: str,
    mode: str | None,
    opset: int,
    parity: dict[str, Any],
    int8: Int8Options | None = None,
) -> dict[str, Any]:
    return {
        "kind": format,
        "spec": source.meta.get("spec"),
        "classes": list(source.classes),
        "data_config": dict(source.data_config),
        "recipe": source.meta.get("recipe"),
        "metrics": source.meta.get("metrics"),
        "source": {
            "path": os.fspath(source.path),
            "weights_sha256": source.meta.get("weights_sha256"),
        },
        "export": {
            "format": format,
            "opset": opset if format == "onnx" else None,
            "quantize": mode,
            "int8": int8.to_dict() if int8 else None,
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "parity": parity,
        },
    }


def _accuracy_change(source: Bundle, out: Path, data: str | os.PathLike) -> dict[str, float]:
    from graft.inference.evaluation import evaluate

    before = evaluate(source, data).accuracy
    after = evaluate(out, data).accuracy
    return {"pytorch": before, "exported": after, "change": after - before}


# its name before graft.export became only a package (kept for one release)
export = export_model
