"""``HybridModel``: several backbones, each fed its own input, fused, with one head on top.

Data flow for a batch ``x`` of ``[0, 1]`` pixels at the hybrid's input size::

    x -> inputs[k] (resize + normalize for branch k) -> branches[k].forward_features -> ...
      concat / gated:  branches[k].forward_head(pre_logits=True) (each branch's own pooling) -> fusion
      attention:       CNN map flattened to tokens + the token branch's tokens -> fusion
    -> forward_features(x) = fused vector (B, num_features) -> head_drop -> head -> logits

Parameter names: ``branches.<key>.*``, ``inputs.<key>.{mean,std}`` (buffers), ``fusion.*``, ``head.*``,
where ``<key>`` is ``cnn`` or ``vit`` (``cnn2``, ... when a kind repeats). The model honours timm's
contract (``forward_features``, ``forward_head``, ``reset_classifier``, ``get_classifier``,
``group_matcher``, ``num_features``, ``num_classes``, ``pretrained_cfg``); build it with
:func:`graft.hybrid.create_hybrid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graft.hybrid.branch_input import BranchInput
from graft.hybrid.fusion import CrossAttentionFusion
from graft.hybrid.groups import hybrid_matcher
from graft.models.heads import head_spec, make_head

# how a branch's forward_features output is laid out
LAYOUTS = ("nchw", "nhwc", "tokens")


class HybridModel(nn.Module):
    """Fused backbones with timm's model contract. Build it with :func:`graft.hybrid.create_hybrid`."""

    def __init__(
        self,
        branches: Mapping[str, nn.Module],
        inputs: Mapping[str, BranchInput],
        layouts: Mapping[str, str],
        fusion: nn.Module,
        num_classes: int,
        drop_rate: float = 0.0,
        head: str | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleDict(dict(branches))
        self.inputs = nn.ModuleDict(dict(inputs))
        self.layouts = dict(layouts)
        self.fusion = fusion
        self.num_features = int(fusion.num_features)
        self.head_hidden_size = self.num_features
        self.num_classes = int(num_classes)
        self.drop_rate = float(drop_rate)
        self.head_cfg = head_spec(head)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = make_head(self.head_cfg, self.num_features, self.num_classes)
        self.pretrained_cfg: dict[str, Any] = {}
        self.default_cfg = self.pretrained_cfg
        self.graft_spec: dict[str, Any] = {}
        # freshly initialised parameters besides the head: recipes should train them with the head
        self.graft_new_params: tuple[str, ...] = ("fusion.",)

    # ---------------------------------------------------------------------------- branch inputs

    def branch_inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """What each branch receives for the hybrid input ``x`` (resized and normalized)."""
        return {key: self.inputs[key](x) for key in self.branches}

    def forward_branches(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's ``forward_features`` output (unpooled map or tokens), by branch key."""
        return {
            key: self.branches[key].forward_features(self.inputs[key](x)) for key in self.branches
        }

    def pooled_branches(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's pooled features ``(B, D_k)`` (its own ``forward_head(pre_logits=True)``)."""
        feats = self.forward_branches(x)
        return {k: self.branches[k].forward_head(f, pre_logits=True) for k, f in feats.items()}

    # ---------------------------------------------------------------------------- timm contract

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The fused features ``(B, num_features)``: everything before the head."""
        if isinstance(self.fusion, CrossAttentionFusion):
            feats = self.forward_branches(x)
            cnn = next(k for k in feats if self.layouts[k] != "tokens")
            tok = next(k for k in feats if self.layouts[k] == "tokens")
            return self.fusion(self._as_tokens(feats[cnn], self.layouts[cnn]), feats[tok])
        return self.fusion(list(self.pooled_branches(x).values()))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head with a fresh one for ``num_classes`` (0: no head, features out)."""
        del global_pool  # the hybrid's pooling is its fusion; kept for timm's signature
        self.num_classes = int(num_classes)
        self.head = make_head(self.head_cfg, self.num_features, self.num_classes)
        self.pretrained_cfg["num_classes"] = self.num_classes
        if self.graft_spec:
            self.graft_spec["num_classes"] = self.num_classes

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm-format groups: ``<key>.<group>`` per branch (stem first), then ``fusion``, ``head``."""
        return hybrid_matcher({k: _branch_matcher(b, coarse) for k, b in self.branches.items()})

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Branch parameters their backbone exempts from weight decay (position embeddings, ...)."""
        out = set()
        for key, branch in self.branches.items():
            names = branch.no_weight_decay() if hasattr(branch, "no_weight_decay") else ()
            out.update(f"branches.{key}.{n}" for n in names)
        return out

    # -------------------------------------------------------------------------------- helpers

    @staticmethod
    def _as_tokens(feat: torch.Tensor, layout: str) -> torch.Tensor:
        if layout == "nchw":
            return feat.flatten(2).transpose(1, 2)
        if layout == "nhwc":
            return feat.flatten(1, 2)
        return feat


def _branch_matcher(branch: nn.Module, coarse: bool) -> Any:
    fn = getattr(branch, "group_matcher", None)
    return fn(coarse=coarse) if callable(fn) else None
