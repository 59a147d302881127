"""int8 quantisation with onnxruntime: dynamic (weights only) or static (calibrated activations).

- ``int8-dynamic``: the weights of matrix multiplications (``MatMul``, ``Gemm``: transformers, heads)
  stored as int8, activations quantised on the fly; needs no data. Convolutions stay fp32: dynamic
  ``ConvInteger`` runs several times slower than fp32 convolutions in onnxruntime's CPU kernels
  (8x on EfficientNet-Lite0 here), so CNNs should use ``int8-static``.
- ``int8-static``: every operator onnxruntime can quantise (convolutions, residual adds, pooling, the
  classifier) in QDQ format, activations as uint8 with ranges calibrated on images from the train
  split (stratified by class), weights per output channel. Settings are an :class:`Int8Options`.
  Export first makes timm's dynamic "SAME" padding constant (:mod:`graft.export.static_pad`), so that
  onnxruntime fuses every QDQ group into int8 kernels (before that, the int8 model ran 4.6x slower
  than fp32).

Settings measured on EfficientNet-Lite0 trained on the animals sample (500 test images, fp32 0.938;
x86 CPU with AVX2 but no VNNI; agreement = top-1 agreement with fp32; docs/benchmarks/export.md has the full table):

- Default ``weights="uint8"`` (8-bit unsigned, per channel): +0.2 to +0.6 points, agreement 98-99%,
  the same over three calibration samples. onnxruntime runs it with uint8 x uint8 kernels, which were
  4-5x slower than fp32 on this CPU: the file is 3.5x smaller, but choose ``int8`` for speed.
- ``weights="int8"``: signed weights with a 7-bit range (``reduce_range``) for onnxruntime's fast
  uint8 x int8 kernels (1.4-1.6x faster than fp32 at batch 1 and 32). Those kernels sum pairs of products
  in 16 bits (``vpmaddubsw``), which saturate with full 8-bit weights: -14.8 points (-0.6 for the
  same model simulated in fp32); at 7 bits -5.8. With the stem stored unsigned (``uint8_layers``,
  default ``("stem",)``): -1.2 to -2.0 points depending on the calibration sample, agreement 95%;
  with the stem kept in fp32 instead, -1.8 (94.6%).
- Not quantising the depthwise convolutions (-10.4 with int8 weights), the residual adds (-6.4) or
  the classifier (-1.8) did not help; entropy (-1.8) and percentile (-1.8) calibration and 512 or
  1,000 calibration images (-1.6, -2.0) were no better than MinMax on 256, and 2-3x slower.

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
from typing import Any

import numpy as np

from graft.errors import ConfigError, raise_unknown
from graft.export.options import LAYER_GROUPS, Int8Options
from graft.export.runtime import INPUT_NAME
from graft.log import get_logger

QUANTIZE_MODES = ("int8-dynamic", "int8-static")
DYNAMIC_OPS = ["MatMul", "Gemm"]
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
    options: Int8Options | None = None,
) -> Path:
    """Quantise the ONNX model ``src`` into ``dst`` (``mode`` from :data:`QUANTIZE_MODES`).

    ``calibration``: float32 batches (``int8-static``); ``options``: static settings (default
    :class:`Int8Options`). The model is first prepared with onnxruntime's ``quant_pre_process``
    (constant folding, shape inference).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in QUANTIZE_MODES:
        raise ConfigError(f"unknown quantize mode '{mode}'; valid: {', '.join(QUANTIZE_MODES)}")
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
        else:
            if calibration is None:
                raise ConfigError("int8-static quantisation needs calibration batches")
            _quantize_static(prepared, Path(dst), calibration, options or Int8Options())
    return Path(dst)


def _quantize_static(
    src: Path, dst: Path, calibration: Iterable[np.ndarray], options: Int8Options
) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    graph = onnx.load(os.fspath(src)).graph
    excluded = nodes_to_keep(graph, options.keep_fp32)
    signed = options.weights == "int8"
    extra = {}
    if signed and options.uint8_layers:
        extra["TensorQuantOverrides"] = _uint8_weights(graph, options, excluded)
    quantize_static(
        src,
        dst,
        _BatchReader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=options.per_channel,
        reduce_range=signed,  # 7-bit int8 weights: no saturation in x86 u8 x s8 kernels (see above)
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
        calibrate_method=methods[options.method],
        nodes_to_exclude=excluded,
        extra_options=extra,
    )


def _uint8_weights(
    graph: Any, options: Int8Options, excluded: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """onnxruntime overrides: unsigned weights for the nodes of ``options.uint8_layers``.

    They keep the 7-bit range of the other weights (codes 0..128 around zero point 64) but run in
    onnxruntime's uint8 x uint8 kernels; with the full 8-bit range (0..255) the stem was far less
    faithful in a model whose other weights are signed (KL to fp32 0.139 against 0.044).
    """
    from onnxruntime.quantization import QuantType

    chosen = set(nodes_to_keep(graph, options.uint8_layers)) - set(excluded)
    weights = {i.name for i in graph.initializer}
    override: dict[str, Any] = {"quant_type": QuantType.QUInt8}  # same 7-bit range as the rest
    if options.per_channel:
        override["axis"] = 0
    return {
        n.input[1]: [dict(override)]
        for n in graph.node
        if n.name in chosen and n.op_type == "Conv" and n.input[1] in weights
    }


def nodes_to_keep(graph: Any, keep: Iterable[str]) -> list[str]:
    """ONNX node names for ``keep`` (groups from :data:`LAYER_GROUPS` or node names), in graph order.

    Example:
        >>> nodes_to_keep(onnx.load("fp32.onnx").graph, ["stem"])  # doctest: +SKIP
        ['/conv_stem/conv_stem.1/Conv']
    """
    nodes = list(graph.node)
    names = [n.name for n in nodes]
    groups = _layer_groups(nodes)
    chosen: set[str] = set()
    for item in keep:
        if item in groups:
            chosen.update(groups[item])
        elif item in names:
            chosen.add(item)
        else:
            raise_unknown(
                "layer to keep in fp32",
                item,
                [*LAYER_GROUPS, *names],
                hint=f"Give a group ({', '.join(LAYER_GROUPS)}) or the name of a node of the ONNX graph.",
            )
    return [name for name in names if name in chosen]


def _layer_groups(nodes: list[Any]) -> dict[str, list[str]]:
    convs = [n for n in nodes if n.op_type == "Conv"]
    dense = [n for n in nodes if n.op_type in ("Gemm", "MatMul")]
    return {
        "stem": [convs[0].name] if convs else [],
        "depthwise": [n.name for n in convs if _conv_groups(n) > 1],
        "classifier": [dense[-1].name] if dense else [],
    }


def _conv_groups(node: Any) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


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
