"""int8 quantisation with onnxruntime: dynamic (weights only) or static (calibrated activations).

- ``int8-dynamic``: the weights of matrix multiplications (``MatMul``, ``Gemm``: transformers, heads)
  stored as int8, activations quantised on the fly; needs no data. Convolutions stay fp32: dynamic
  ``ConvInteger`` runs several times slower than fp32 convolutions in onnxruntime's CPU kernels
  (8x on EfficientNet-Lite0 here), so CNNs should use ``int8-static``.
- ``int8-static``: convolutions and matrix multiplications with 8-bit weights (per channel) and
  activations (QDQ format), activation ranges calibrated (min/max) on a few hundred preprocessed
  images. Measured on EfficientNet-Lite0 trained on the animals sample (200 test images): this setting
  (unsigned 8-bit weights, Conv/MatMul only) lost 1.5 points; signed weights lost 6-16 points
  (x86 u8s8 saturation), and also quantising residual adds, pooling and the classifier lost 29 points.

Example:
    >>> quantize_model("fp32.onnx", "int8.onnx", "int8-static", calibration=batches)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from graft.errors import ConfigError
from graft.export.runtime import INPUT_NAME
from graft.log import get_logger

QUANTIZE_MODES = ("int8-dynamic", "int8-static")
DYNAMIC_OPS = ["MatMul", "Gemm"]
STATIC_OPS = ["Conv", "MatMul"]
log = get_logger("graft.export")


def resolve_mode(quantize: str | None, has_calibration: bool) -> str | None:
    """``None`` | ``int8`` (static with calibration data, else dynamic) | ``int8-dynamic`` | ``int8-static``."""
    if quantize in (None, "", "none"):
        return None
    if quantize == "int8":
        if not has_calibration:
            log.warning(
                "int8 without calibration images: dynamic quantisation, which quantises matrix "
                "multiplications only (convolutions stay fp32). For a CNN pass --calibration DATA."
            )
        return "int8-static" if has_calibration else "int8-dynamic"
    if quantize not in QUANTIZE_MODES:
        raise ConfigError(
            f"unknown quantize mode '{quantize}'; valid: int8, {', '.join(QUANTIZE_MODES)}"
        )
    if quantize == "int8-static" and not has_calibration:
        raise ConfigError(
            "int8-static quantisation needs calibration images: pass calibration=DATA "
            "(--calibration DATA, a folder of typical images; a few hundred are enough)."
        )
    return quantize


class _BatchReader:
    """onnxruntime CalibrationDataReader over an iterable of float32 batches."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return (
            None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}
        )


def quantize_model(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    mode: str,
    calibration: Iterable[np.ndarray] | None = None,
) -> Path:
    """Quantise the ONNX model ``src`` into ``dst`` (``mode`` from :data:`QUANTIZE_MODES`)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as work, _quiet_root_logger():
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(os.fspath(src), os.fspath(prepared), skip_symbolic_shape=True)
        if mode == "int8-dynamic":
            quantize_dynamic(
                prepared,
                dst,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=DYNAMIC_OPS,
            )
        elif mode == "int8-static":
            if calibration is None:
                raise ConfigError("int8-static quantisation needs calibration batches")
            quantize_static(
                prepared,
                dst,
                _BatchReader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QUInt8,
                op_types_to_quantize=STATIC_OPS,
            )
        else:
            raise ConfigError(f"unknown quantize mode '{mode}'; valid: {', '.join(QUANTIZE_MODES)}")
    return Path(dst)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantiser logs shape-inference notes on the root logger; keep them out of the terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
