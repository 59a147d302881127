"""Settings of static int8 quantisation (no heavy imports: the CLI reads them for its help).

Example:
    >>> Int8Options(method="entropy").describe()
    'entropy on 256 images, int8 weights, fp32: stem'
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
    """Settings of static int8 quantisation; the defaults are the measured best (module docstring).

    - ``calibration_images``: how many images (from the train split, an equal share per class)
      calibrate the activation ranges.
    - ``method``: ``minmax`` | ``entropy`` | ``percentile`` (onnxruntime's calibrators).
    - ``weights``: ``int8`` (signed, 7-bit range: fast on x86) | ``uint8`` (8-bit: most accurate, slower).
    - ``keep_fp32``: layers left in fp32: groups ``stem`` (first convolution), ``depthwise`` (grouped
      convolutions), ``classifier`` (last Gemm/MatMul), or ONNX node names.
    - ``per_channel``: one weight scale per output channel (``False``: one per tensor).

    Example:
        >>> Int8Options(keep_fp32=("stem", "classifier")).keep_fp32
        ('stem', 'classifier')
    """

    calibration_images: int = 256
    method: str = "minmax"
    weights: str = "int8"
    keep_fp32: tuple[str, ...] = ("stem",)
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
        object.__setattr__(self, "keep_fp32", tuple(self.keep_fp32))

    def describe(self) -> str:
        """Short text for the export summary, e.g. ``minmax on 256 images, int8 weights, fp32: stem``."""
        kept = ", ".join(self.keep_fp32) or "none"
        return f"{self.method} on {self.calibration_images} images, {self.weights} weights, fp32: {kept}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "keep_fp32": list(self.keep_fp32)}
