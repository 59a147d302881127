"""``graft export BUNDLE --format onnx|torchscript [--quantize int8]``: a verified deployment bundle.

Example:
    $ graft export runs/pets/bundle --format onnx --quantize int8 --calibration data/pets --out deploy/pets
"""

from __future__ import annotations

import argparse

INT8_DEFAULTS = "defaults measured on EfficientNet-Lite0; see the README"


def register(subparsers: argparse._SubParsersAction) -> None:
    from graft.export.options import CALIBRATION_METHODS, WEIGHT_TYPES, Int8Options

    defaults = Int8Options()
    p = subparsers.add_parser(
        "export",
        help="export a bundle to ONNX (fp32/int8) or TorchScript, checked against PyTorch",
        description="Export a PyTorch bundle to ONNX (dynamic batch axis, preprocessing and classes in the "
        "metadata, verified with onnxruntime) or TorchScript. The ONNX bundle works with graft predict and "
        "graft evaluate.",
    )
    p.add_argument("bundle", help="bundle folder written by graft fit")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"], help="default onnx")
    p.add_argument(
        "--quantize",
        choices=["int8", "int8-dynamic", "int8-static"],
        help="int8 quantisation with onnxruntime (int8: static with --calibration, else dynamic)",
    )
    p.add_argument(
        "--calibration",
        help="images for static int8 calibration (folder; its train/ split if any, an equal share per class)",
    )
    p.add_argument(
        "--data",
        help="labelled images (ImageFolder or folder with test/): report the accuracy change",
    )
    p.add_argument(
        "--out", help="output bundle folder (default: BUNDLE-onnx, BUNDLE-onnx-int8, ...)"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    g = p.add_argument_group(f"static int8 settings ({INT8_DEFAULTS})")
    g.add_argument(
        "--calibration-images",
        type=int,
        help=f"how many calibration images (default {defaults.calibration_images})",
    )
    g.add_argument(
        "--calibration-method",
        choices=CALIBRATION_METHODS,
        help=f"activation range calibration (default {defaults.method}; entropy and percentile are "
        "slower and were not more accurate on Lite0)",
    )
    g.add_argument(
        "--int8-weights",
        choices=WEIGHT_TYPES,
        help=f"weight type (default {defaults.weights}: 8-bit, within a point of fp32 on Lite0, but slower "
        "than fp32 on x86 CPUs without VNNI; int8: signed 7-bit, 1.4x faster than fp32 there, 1-2 points "
        "less accurate)",
    )
    g.add_argument(
        "--uint8-layers",
        help="with --int8-weights int8: comma-separated layers whose weights are stored unsigned "
        "(uint8 x uint8 kernels; same names as --keep-fp32; 'none' for none). The stem is the most "
        f"sensitive layer (default {','.join(defaults.uint8_layers) or 'none'})",
    )
    g.add_argument(
        "--keep-fp32",
        help=f"comma-separated layers left in fp32: stem, depthwise, classifier, or ONNX node names; "
        f"'none' quantises every layer (default {','.join(defaults.keep_fp32) or 'none'})",
    )
    g.add_argument(
        "--per-tensor",
        action="store_true",
        help="one weight scale per tensor instead of per output channel (less accurate)",
    )
    p.set_defaults(func=run)


def int8_options(args: argparse.Namespace):
    """The ``Int8Options`` given on the command line, or ``None`` when no static int8 flag was given."""
    from dataclasses import replace

    from graft.export.options import Int8Options

    given = {
        "calibration_images": args.calibration_images,
        "method": args.calibration_method,
        "weights": args.int8_weights,
        "uint8_layers": _layers(args.uint8_layers),
        "keep_fp32": _layers(args.keep_fp32),
        "per_channel": False if args.per_tensor else None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    return replace(Int8Options(), **given) if given else None


def _layers(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return () if items in ([], ["none"]) else tuple(items)


def run(args: argparse.Namespace) -> int:
    from graft.export import export

    result = export(
        args.bundle,
        format=args.format,
        quantize=args.quantize,
        calibration=args.calibration,
        data=args.data,
        out=args.out,
        opset=args.opset,
        int8=int8_options(args),
    )
    print(result.summary())
    return 0
