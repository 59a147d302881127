"""Fusion modules: turn the features of several backbones into one feature vector.

Three fusions, each a small ``nn.Module`` with ``num_features`` (the width it outputs):

- :class:`ConcatFusion` (``"concat"``): concatenate each branch's pooled features, optionally after a
  per-branch ``Linear + LayerNorm`` projection to a common width ``proj_dim``.
- :class:`GatedFusion` (``"gated"``): project each branch to ``proj_dim`` (``Linear + LayerNorm``),
  compute per-sample branch weights ``w = softmax(W [p_1, ..., p_n] + b)`` and return
  ``sum_i w_i p_i``. The gate starts at zero, i.e. equal weights.
- :class:`CrossAttentionFusion` (``"attention"``): the token branch's tokens (queries) attend to the
  CNN's spatial map flattened to tokens (keys/values), one ``nn.MultiheadAttention`` layer with a
  residual and LayerNorm; output ``[mean(attended tokens), mean(CNN tokens)]`` (``2 * proj_dim``).

Example:
    >>> import torch
    >>> fuse = GatedFusion([96, 64], proj_dim=32)
    >>> fuse([torch.rand(2, 96), torch.rand(2, 64)]).shape
    torch.Size([2, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from graft.errors import ConfigError

FUSIONS = ("concat", "gated", "attention")


def _projection(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim))


class ConcatFusion(nn.Module):
    """``[f_1, ..., f_n]`` or, with ``proj_dim``, ``[LN(W_1 f_1), ..., LN(W_n f_n)]``."""

    def __init__(self, dims: Sequence[int], proj_dim: int | None = None) -> None:
        super().__init__()
        self.proj = None
        if proj_dim:
            self.proj = nn.ModuleList(_projection(d, proj_dim) for d in dims)
        self.num_features = proj_dim * len(dims) if proj_dim else int(sum(dims))

    def forward(self, pooled: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.proj is not None:
            pooled = [p(f) for p, f in zip(self.proj, pooled, strict=True)]
        return torch.cat(list(pooled), dim=-1)


class GatedFusion(nn.Module):
    """Per-sample softmax gate over branches projected to a common width ``proj_dim``."""

    def __init__(self, dims: Sequence[int], proj_dim: int) -> None:
        super().__init__()
        self.proj = nn.ModuleList(_projection(d, proj_dim) for d in dims)
        self.gate = nn.Linear(proj_dim * len(dims), len(dims))
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.num_features = proj_dim

    def forward(self, pooled: Sequence[torch.Tensor]) -> torch.Tensor:
        projected, weights = self._project_and_weigh(pooled)
        return (weights.unsqueeze(-1) * projected).sum(dim=1)

    def gate_weights(self, pooled: Sequence[torch.Tensor]) -> torch.Tensor:
        """The branch weights ``(B, n_branches)`` (rows sum to 1) for pooled branch features."""
        return self._project_and_weigh(pooled)[1]

    def _project_and_weigh(
        self, pooled: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        projected = torch.stack(
            [p(f) for p, f in zip(self.proj, pooled, strict=True)], dim=1
        )  # B, n, D
        weights = torch.softmax(self.gate(projected.flatten(1)), dim=-1)  # B, n
        return projected, weights


def pick_heads(dim: int, wanted: int) -> int:
    """The largest head count ``<= wanted`` that divides ``dim`` (MultiheadAttention needs it)."""
    if wanted < 1:
        raise ConfigError(f"attn_heads must be >= 1, got {wanted}")
    return next(h for h in range(min(wanted, dim), 0, -1) if dim % h == 0)


class CrossAttentionFusion(nn.Module):
    """Token-branch queries attend to CNN-map tokens; pooled result concatenated with the CNN's."""

    def __init__(
        self, cnn_dim: int, token_dim: int, proj_dim: int, heads: int = 4, dropout: float = 0.0
    ):
        super().__init__()
        self.cnn_proj = _projection(cnn_dim, proj_dim)
        self.token_proj = _projection(token_dim, proj_dim)
        self.attn = nn.MultiheadAttention(
            proj_dim, pick_heads(proj_dim, heads), dropout=dropout, batch_first=True
        )
        self.norm = nn.LayerNorm(proj_dim)
        self.num_features = 2 * proj_dim

    def forward(self, cnn_tokens: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``cnn_tokens`` ``(B, H*W, C)`` (the map flattened), ``tokens`` ``(B, N, D)``."""
        kv = self.cnn_proj(cnn_tokens)
        q = self.token_proj(tokens)
        attended, _ = self.attn(q, kv, kv, need_weights=False)
        fused = self.norm(q + attended)
        return torch.cat([fused.mean(dim=1), kv.mean(dim=1)], dim=-1)
