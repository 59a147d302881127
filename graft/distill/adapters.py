"""Adapters that map a student feature onto its teacher feature's shape.

Features come as CNN maps ``B,C,H,W``, ViT tokens ``B,N,D`` (prefix tokens such as cls first) or pooled
vectors ``B,D``. Both sides are brought to maps: tokens lose their prefix tokens and are laid out on
their square grid (``sqrt(N - prefix)``), vectors become ``B,D,1,1``. The student side then goes through
a channel projection (linear on tokens, 1x1 conv on maps, from student to teacher channels) and a
spatial alignment to the teacher's grid (bilinear interpolation, or adaptive average pooling of both
maps to the smaller grid). Optional normalisation standardises every position over channels on both
sides, so the loss compares directions and relative magnitudes rather than raw scales.

Adapters are trained with the student and are not part of the saved student.

Example:
    >>> import torch
    >>> a = FeatureAdapter((2, 16, 8, 8), (2, 64, 4, 4))
    >>> s, t = a(torch.randn(2, 16, 8, 8), torch.randn(2, 64, 4, 4))
    >>> tuple(s.shape), tuple(t.shape)
    ((2, 64, 4, 4), (2, 64, 4, 4))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from graft.errors import ConfigError

Spatial = Literal["interpolate", "pool"]
SPATIAL_MODES = ("interpolate", "pool")


def infer_prefix_tokens(num_tokens: int, hint: int | None = None) -> int:
    """Number of prefix (cls/register/distillation) tokens before a square patch grid.

    ``hint`` (a model's ``num_prefix_tokens``) wins when it leaves a square; otherwise the smallest
    count in 0..8 that leaves a square grid.
    """
    candidates = ([hint] if hint is not None else []) + list(range(9))
    for k in candidates:
        rest = num_tokens - k
        if rest > 0 and math.isqrt(rest) ** 2 == rest:
            return k
    raise ConfigError(
        f"cannot lay {num_tokens} tokens out on a square grid (tried dropping 0-8 prefix tokens); "
        "tap a layer with a square patch grid or a CNN feature map instead."
    )


def tokens_to_map(tokens: Tensor, prefix: int) -> Tensor:
    """``B,N,D`` tokens -> ``B,D,h,w`` map after dropping ``prefix`` leading tokens (square grid)."""
    b, n, d = tokens.shape
    side = math.isqrt(n - prefix)
    return tokens[:, prefix:].transpose(1, 2).reshape(b, d, side, side)


def to_map(x: Tensor, prefix: int = 0) -> Tensor:
    """Any feature (``B,C,H,W``, ``B,N,D`` or ``B,D``) as a ``B,C,H,W`` map."""
    if x.dim() == 4:
        return x
    if x.dim() == 3:
        return tokens_to_map(x, prefix)
    if x.dim() == 2:
        return x[:, :, None, None]
    raise ConfigError(
        f"unsupported feature shape {tuple(x.shape)}: expected B,C,H,W maps, B,N,D tokens or B,D vectors"
    )


def map_shape(shape: Sequence[int], prefix: int = 0) -> tuple[int, int, int]:
    """``(C, H, W)`` of the map that :func:`to_map` makes from a feature of ``shape``."""
    if len(shape) == 4:
        return int(shape[1]), int(shape[2]), int(shape[3])
    if len(shape) == 3:
        side = math.isqrt(int(shape[1]) - prefix)
        return int(shape[2]), side, side
    if len(shape) == 2:
        return int(shape[1]), 1, 1
    raise ConfigError(f"unsupported feature shape {tuple(shape)}")


def standardize(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance over channels at every position of a ``B,C,H,W`` map."""
    return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], eps=eps).permute(0, 3, 1, 2)


class FeatureAdapter(nn.Module):
    """Map a student feature onto the teacher's ``B,C,H,W`` map (see the module docstring).

    Args:
        student_shape, teacher_shape: shapes seen in a dry run (batch dim included).
        spatial: ``"interpolate"`` (resize the student map to the teacher grid) or ``"pool"``
            (adaptive average pooling of both maps to the smaller grid).
        project: insert the channel projection (off for attention transfer, which sums channels).
        normalize: standardise both maps over channels at each position.
        student_prefix, teacher_prefix: prefix tokens of token features (``None``: inferred).
    """

    def __init__(
        self,
        student_shape: Sequence[int],
        teacher_shape: Sequence[int],
        spatial: Spatial = "interpolate",
        project: bool = True,
        normalize: bool = False,
        student_prefix: int | None = None,
        teacher_prefix: int | None = None,
    ) -> None:
        super().__init__()
        if spatial not in SPATIAL_MODES:
            raise ConfigError(f"spatial={spatial!r} is not one of {', '.join(SPATIAL_MODES)}")
        self.student_tokens = len(student_shape) == 3
        self.student_prefix = _prefix(student_shape, student_prefix)
        self.teacher_prefix = _prefix(teacher_shape, teacher_prefix)
        s_c, s_h, s_w = map_shape(student_shape, self.student_prefix)
        t_c, t_h, t_w = map_shape(teacher_shape, self.teacher_prefix)
        self.spatial = spatial
        self.normalize = normalize
        self.teacher_grid = (t_h, t_w)
        self.grid = (t_h, t_w) if spatial == "interpolate" else (min(s_h, t_h), min(s_w, t_w))
        self.proj = _projection(s_c, t_c, self.student_tokens) if project else None
        self.out_channels = t_c if project else s_c

    def forward(self, student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(student, teacher)`` maps of equal shape (channels equal when projecting)."""
        return self.student_map(student), self.teacher_map(teacher)

    def student_map(self, x: Tensor) -> Tensor:
        """The adapted student map: project, lay out, align, (normalise)."""
        if self.proj is not None and self.student_tokens:
            x = self.proj(x)
        x = to_map(x, self.student_prefix)
        if self.proj is not None and not self.student_tokens:
            x = self.proj(x)
        x = self._align(x)
        return standardize(x) if self.normalize else x

    def teacher_map(self, x: Tensor) -> Tensor:
        """The teacher target map: lay out, align, (normalise). No parameters."""
        x = self._align(to_map(x, self.teacher_prefix))
        return standardize(x) if self.normalize else x

    def _align(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) == self.grid:
            return x
        if self.spatial == "interpolate":
            return F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)
        return F.adaptive_avg_pool2d(x, self.grid)

    def extra_repr(self) -> str:
        return f"grid={self.grid}, spatial={self.spatial}, normalize={self.normalize}"


def _prefix(shape: Sequence[int], hint: int | None) -> int:
    return infer_prefix_tokens(int(shape[1]), hint) if len(shape) == 3 else 0


def _projection(in_ch: int, out_ch: int, tokens: bool) -> nn.Module:
    """Linear (tokens) or 1x1 conv (maps) from student to teacher channels, small initialisation."""
    layer: nn.Module = nn.Linear(in_ch, out_ch) if tokens else nn.Conv2d(in_ch, out_ch, 1)
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    nn.init.zeros_(layer.bias)
    return layer
