"""The ensemble as one torch module: pixels in, log of the weighted mean of member probabilities out.

Every member keeps its own preprocessing. The ensemble's input is the image decoded once, resized
and centre-cropped to the largest member input size and scaled to [0, 1] (no normalisation); inside
the module each member resizes it to its own input size (bilinear, only when the size differs) and
normalises it with its own mean and std. So one tensor goes in, whichever members disagree on
size or normalisation, and the whole ensemble traces to a single ONNX graph.

The output is ``log(sum_i w_i softmax(member_i(x)))``: a softmax of it gives back the weighted mean of
the members' probabilities exactly, so ``predict``, ``evaluate`` and ``serve`` (which apply a softmax
to a bundle's outputs) report the ensemble's probabilities with no special case.

Example:
    >>> import timm, torch
    >>> a = timm.create_model("test_efficientnet", num_classes=3)
    >>> cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.25,) * 3}
    >>> ens = EnsembleModel([a, a], [cfg, cfg], [0.5, 0.5]).eval()
    >>> ens(torch.rand(2, 3, 32, 32)).exp().sum(dim=1).round(decimals=4).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

TINY = 1e-30  # probabilities are clamped here before the log (softmax of the log is unchanged)


class MemberInput(nn.Module):
    """Resize (when needed) and normalise the shared [0, 1] batch for one member."""

    def __init__(self, data_config: Mapping[str, Any]) -> None:
        super().__init__()
        channels, height, width = (int(v) for v in data_config["input_size"])
        self.size = (height, width)
        shape = (1, channels, 1, 1)
        self.register_buffer("mean", torch.tensor(data_config["mean"]).float().view(shape))
        self.register_buffer("std", torch.tensor(data_config["std"]).float().view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std


class EnsembleModel(nn.Module):
    """Weighted probability average of ``members`` (each a module: normalised batch -> logits)."""

    def __init__(
        self,
        members: Sequence[nn.Module],
        data_configs: Sequence[Mapping[str, Any]],
        weights: Sequence[float],
    ) -> None:
        super().__init__()
        if not (len(members) == len(data_configs) == len(weights)) or not members:
            raise ValueError("one data_config and one weight per member, and at least one member")
        self.members = nn.ModuleList(members)
        self.inputs = nn.ModuleList(MemberInput(cfg) for cfg in data_configs)
        self.register_buffer("weights", torch.tensor([float(w) for w in weights]))

    @property
    def num_classes(self) -> int:
        return int(getattr(self.members[0], "num_classes", 0))

    def member_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's softmax probabilities: ``(members, batch, classes)``."""
        outs = [
            m(prep(x)).float().softmax(dim=1)
            for m, prep in zip(self.members, self.inputs, strict=True)
        ]
        return torch.stack(outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = (self.member_probs(x) * self.weights.view(-1, 1, 1)).sum(dim=0)
        return probs.clamp_min(TINY).log()

    def map_members(
        self, fn: Callable[[nn.Module, Sequence[int]], nn.Module], channels: int
    ) -> EnsembleModel:
        """A copy whose member ``i`` is ``fn(member_i, its input_size)`` (export uses it to fix
        "SAME" paddings for each member's own size).

        Example:
            >>> fixed = ens.map_members(freeze_same_padding, 3)  # doctest: +SKIP
        """
        members = [
            fn(m, (channels, *prep.size)) for m, prep in zip(self.members, self.inputs, strict=True)
        ]
        configs = [
            {"input_size": (channels, *p.size), "mean": p.mean.flatten().tolist(),
             "std": p.std.flatten().tolist()}
            for p in self.inputs
        ]  # fmt: skip
        return EnsembleModel(members, configs, self.weights.tolist()).eval()
