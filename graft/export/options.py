"""Settings of static int8 quantisation (no heavy imports: the CLI reads them for its help).

Example:
    >>> Int8Options(method="entropy").describe()
    'entropy on 256 images, uint8 weights, fp32: none'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from graft.errors import ConfigError, raise_unknown

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
WEIGHT_TYPES = ("int8", "uint8")
LAYER_GROUPS = ("stem", "depthwise", "classifier")


@dataclass(frozen=True)
class Int8Options:
    """Settings of static int8 quantisation; the defaults are the measured best (see
    :mod:`graft.export.quantize`).

    - ``calibration_images``: how many images (from the train split, an equal share per class)
      calibrate the activation ranges.
    - ``method``: ``minmax`` | ``entropy`` | ``percentile`` (onnxruntime's calibrators).
    - ``weights``: ``uint8`` (8-bit unsigned: faithful to fp32 within a point, but onnxruntime's
      uint8 x uint8 kernels ran 4-5x slower than fp32 on an x86 CPU without VNNI) | ``int8`` (signed,
      7-bit range, onnxruntime's fast uint8 x int8 kernels: 1.4-1.6x faster than fp32 there, 1-2 points
      less accurate on EfficientNet-Lite0).
    - ``uint8_layers``: with ``weights="int8"``, layers whose weights are stored unsigned (same 7-bit
      range, uint8 x uint8 kernels): the ``stem`` (first convolution, raw pixels in) is the most
      sensitive layer and cheap to run that way.
    - ``keep_fp32``: layers left in fp32 (not quantised).
    - Layers are groups ``stem`` (first convolution), ``depthwise`` (grouped convolutions),
      ``classifier`` (last Gemm/MatMul), or ONNX node names.
    - ``per_channel``: one weight scale per output channel (``False``: one per tensor).

    Example:
        >>> Int8Options(keep_fp32=("classifier",)).keep_fp32
        ('classifier',)
    """

    calibration_images: int = 256
    method: str = "minmax"
    weights: str = "uint8"
    uint8_layers: tuple[str, ...] = ("stem",)
    keep_fp32: tuple[str, ...] = ()
    per_channel: bool = True

    def __post_init__(self) -> None:
        if self.calibration_images < 1:
            raise ConfigError(
                f"calibration_images must be at least 1, got {self.calibration_images}; "
                "a few hundred are enough."
            )
        if self.method not in CALIBRATION_METHODS:
            raise_unknown("calibration method", self.method, CALIBRATION_METHODS)
        if self.weights not in WEIGHT_TYPES:
            raise_unknown("int8 weight type", self.weights, WEIGHT_TYPES)
        object.__setattr__(self, "uint8_layers", tuple(self.uint8_layers))
        object.__setattr__(self, "keep_fp32", tuple(self.keep_fp32))

    def describe(self) -> str:
        """Short text for the export summary (see the module example)."""
        weights = f"{self.weights} weights"
        if self.weights == "int8" and self.uint8_layers:
            weights += f" (uint8: {', '.join(self.uint8_layers)})"
        kept = ", ".join(self.keep_fp32) or "none"
        return f"{self.method} on {self.calibration_images} images, {weights}, fp32: {kept}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "uint8_layers": list(self.uint8_layers),
            "keep_fp32": list(self.keep_fp32),
        }
