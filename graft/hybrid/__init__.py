"""Hybrid models: several backbones (e.g. a CNN and a ViT), each fed its own input, features fused.

Example:
    >>> from graft.hybrid import create_hybrid
    >>> model = create_hybrid("test_efficientnet+test_vit", num_classes=3, pretrained=False,
    ...                       fusion="concat")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.hybrid.branch_input import BranchInput
from graft.hybrid.factory import create_hybrid, is_hybrid_name, parse_hybrid_name
from graft.hybrid.fusion import FUSIONS, ConcatFusion, CrossAttentionFusion, GatedFusion
from graft.hybrid.model import HybridModel

__all__ = [
    "FUSIONS",
    "BranchInput",
    "ConcatFusion",
    "CrossAttentionFusion",
    "GatedFusion",
    "HybridModel",
    "create_hybrid",
    "is_hybrid_name",
    "parse_hybrid_name",
]
