"""``graft export BUNDLE --format onnx|torchscript [--quantize int8]``: a verified deployment bundle.

Example:
    $ graft export runs/pets/bundle --format onnx --quantize int8 --calibration data/pets --out deploy/pets
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
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
        "--calibration", help="images for static int8 calibration (folder; its train/ split if any)"
    )
    p.add_argument(
        "--data",
        help="labelled images (ImageFolder or folder with test/): report the accuracy change",
    )
    p.add_argument(
        "--out", help="output bundle folder (default: BUNDLE-onnx, BUNDLE-onnx-int8, ...)"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


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
    )
    print(result.summary())
    return 0
