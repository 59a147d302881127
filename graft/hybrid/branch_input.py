"""Per-branch input preparation inside the model: resize to the branch's size, then normalize.

A hybrid takes one batch of plain ``[0, 1]`` pixels (its own ``pretrained_cfg`` has mean 0, std 1)
and each branch sees the input it was pretrained for. :class:`BranchInput` does that with tensor
operations only (``F.interpolate`` and an affine map), so it is differentiable, runs on any device
and traces into ONNX (``Resize`` + ``Sub`` + ``Div``).

Example:
    >>> import torch
    >>> prep = BranchInput((32, 32), "bicubic", mean=(0.5,) * 3, std=(0.5,) * 3)
    >>> prep(torch.rand(2, 3, 64, 64)).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from graft.errors import ConfigError, raise_unknown

# timm's interpolation names -> F.interpolate modes
MODES = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest", "area": "area"}


def resolve_mode(interpolation: str) -> str:
    """Map a timm interpolation name to an ``F.interpolate`` mode (unknown names raise)."""
    if interpolation not in MODES:
        raise_unknown("interpolation", str(interpolation), MODES)
    return MODES[interpolation]


class BranchInput(nn.Module):
    """Resize a ``(B, C, H, W)`` batch to ``size`` with ``interpolation``, then ``(x - mean) / std``.

    ``mean`` and ``std`` are buffers (saved with the weights, constants in ONNX). The resize is
    skipped when the batch already has ``size``, except while tracing, so an exported graph
    resizes any input size correctly. ``antialias=True`` matches PIL more closely on strong
    downscaling, but the TorchScript-based ONNX exporter cannot export it (keep the default for
    models you will export).
    """

    def __init__(
        self,
        size: Sequence[int],
        interpolation: str = "bilinear",
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ConfigError(
                f"mean {tuple(mean)} and std {tuple(std)} must have one value per channel"
            )
        if any(s <= 0 for s in std):
            raise ConfigError(f"std must be positive, got {tuple(std)}")
        self.size = (int(size[0]), int(size[1]))
        self.interpolation = interpolation
        self.mode = resolve_mode(interpolation)
        self.antialias = bool(antialias) and self.mode in ("bilinear", "bicubic")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or tuple(x.shape[-2:]) != self.size:
            x = self._resize(x)
        return (x - self.mean) / self.std

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode in ("bilinear", "bicubic"):
            return F.interpolate(
                x, size=self.size, mode=self.mode, align_corners=False, antialias=self.antialias
            )
        return F.interpolate(x, size=self.size, mode=self.mode)

    def config(self) -> dict:
        """This branch's preprocessing as a JSON-friendly dict (what ``graft_spec`` records)."""
        return {
            "input_size": list(self.size),
            "interpolation": self.interpolation,
            "mean": [round(float(v), 6) for v in self.mean.flatten()],
            "std": [round(float(v), 6) for v in self.std.flatten()],
            "antialias": self.antialias,
        }

    def extra_repr(self) -> str:
        return f"size={self.size}, interpolation={self.interpolation!r}, antialias={self.antialias}"
