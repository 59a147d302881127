"""``graft export BUNDLE --format onnx|torchscript [--quantize int8]``: a verified deployment bundle.

Runs on the CPU (onnxruntime, and PyTorch for the parity check), so it has no hardware flags.

Example:
    $ graft export runs/pets/bundle --format onnx --quantize int8 --calibration data/pets --out deploy/pets
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Literal

from graft.commands._common import add_parser, emit, save_config
from graft.export.options import Int8Options
from graft.options import add_deprecated, option, resolve

_INT8 = Int8Options()
INT8_DEFAULTS = "defaults measured on EfficientNet-Lite0"


def _names(layers: tuple[str, ...]) -> str:
    return ",".join(layers) or "none"


@dataclass
class ExportOptions:
    """Options of ``graft export`` (:func:`graft.export_model` takes the int8 ones as ``int8=``)."""

    bundle: str = option(None, "bundle folder written by graft fit", positional=True)
    format: Literal["onnx", "torchscript"] = option("onnx", "what to export to")
    quantize: Literal["int8", "int8-dynamic", "int8-static"] | None = option(
        None,
        "int8 quantisation with onnxruntime (int8: static with --calibration, else dynamic)",
        default_text="none (fp32)",
    )
    calibration: str | None = option(
        None,
        "images for static int8 calibration (folder; its train/ split if any, an equal share per "
        "class)",
        default_text="none",
    )
    data: str | None = option(
        None,
        "labelled images (ImageFolder or folder with test/): report the accuracy change",
        default_text="none",
    )
    out: str | None = option(
        None,
        "output bundle folder (with config.yaml)",
        default_text="BUNDLE-onnx, BUNDLE-onnx-int8, ...",
    )
    opset: int = option(17, "ONNX opset")
    calibration_images: int | None = option(
        None,
        f"static int8: how many calibration images ({INT8_DEFAULTS})",
        default_text=str(_INT8.calibration_images),
    )
    calibration_method: Literal["minmax", "entropy", "percentile"] | None = option(
        None,
        "static int8: activation range calibration (entropy and percentile are slower and were not "
        "more accurate on Lite0)",
        default_text=_INT8.method,
    )
    int8_weights: Literal["uint8", "int8"] | None = option(
        None,
        "static int8: weight type (uint8: within a point of fp32 on Lite0, but slower than fp32 on "
        "x86 CPUs without VNNI; int8: signed 7-bit, 1.4x faster there, 1-2 points less accurate)",
        default_text=_INT8.weights,
    )
    uint8_layers: str | None = option(
        None,
        "static int8 with --int8-weights int8: comma-separated layers whose weights are stored "
        "unsigned (same names as --keep-fp32; 'none' for none; the stem is the most sensitive)",
        default_text=_names(_INT8.uint8_layers),
    )
    keep_fp32: str | None = option(
        None,
        "static int8: comma-separated layers left in fp32: stem, depthwise, classifier, or ONNX "
        "node names; 'none' quantises every layer",
        default_text=_names(_INT8.keep_fp32),
    )
    per_channel: bool | None = option(
        None,
        "static int8: one weight scale per output channel (--no-per-channel: one per tensor, less "
        "accurate)",
        default_text="on",
    )


OPTIONS = {"export": ExportOptions}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "export",
        ExportOptions,
        help="export a bundle to ONNX (fp32/int8) or TorchScript, checked against PyTorch",
        description="Export a PyTorch bundle to ONNX (dynamic batch axis, preprocessing and classes "
        "in the metadata, verified with onnxruntime) or TorchScript. The ONNX bundle works with "
        "graft predict and graft evaluate. Runs on the CPU.",
    )
    add_deprecated(p, "--per-tensor", "per_channel", "--no-per-channel", value=False)
    p.set_defaults(func=run)


def int8_options(opts: ExportOptions) -> Int8Options | None:
    """The ``Int8Options`` given, or ``None`` when no static int8 option was given."""
    given = {
        "calibration_images": opts.calibration_images,
        "method": opts.calibration_method,
        "weights": opts.int8_weights,
        "uint8_layers": _layers(opts.uint8_layers),
        "keep_fp32": _layers(opts.keep_fp32),
        "per_channel": opts.per_channel,
    }
    given = {k: v for k, v in given.items() if v is not None}
    return dataclasses.replace(Int8Options(), **given) if given else None


def _layers(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return () if items in ([], ["none"]) else tuple(items)


def run(args: argparse.Namespace) -> int:
    from graft.export import export_model

    opts = resolve(args, ExportOptions)
    result = export_model(
        opts.bundle,
        format=opts.format,
        quantize=opts.quantize,
        calibration=opts.calibration,
        data=opts.data,
        out=opts.out,
        opset=opts.opset,
        int8=int8_options(opts),
    )
    data = {
        "path": str(result.path),
        "format": result.format,
        "quantize": result.quantize,
        "parity": result.parity,
        "size_bytes": result.size_bytes,
        "seconds": result.seconds,
        "accuracy": result.accuracy,
        "int8": dataclasses.asdict(result.int8) if result.int8 else None,
    }
    save_config(opts, result.path)
    emit(args, data, result.summary())
    return 0
