"""Hybrid models: several backbones (e.g. a CNN and a ViT), each fed its own input, features fused.

Example:
    >>> from graft.hybrid import create_hybrid
    >>> model = create_hybrid("test_efficientnet+test_vit", num_classes=3, pretrained=False,
    ...                       fusion="concat", image_size=96)  # doctest: +SKIP
    >>> branch_input_sizes(model)["vit"]["input_size"]  # doctest: +SKIP
    [96, 96]
"""

from __future__ import annotations

from graft.hybrid.branch_input import BranchInput
from graft.hybrid.factory import create_hybrid, is_hybrid_name, parse_hybrid_name
from graft.hybrid.fusion import FUSIONS, ConcatFusion, CrossAttentionFusion, GatedFusion
from graft.hybrid.model import HybridModel
from graft.hybrid.sizes import branch_input_sizes, describe_branch_inputs
from graft.hybrid.source import register

register()  # create_model("a+b") builds a hybrid (graft.models.sources)

__all__ = [
    "FUSIONS",
    "BranchInput",
    "ConcatFusion",
    "CrossAttentionFusion",
    "GatedFusion",
    "HybridModel",
    "branch_input_sizes",
    "create_hybrid",
    "describe_branch_inputs",
    "is_hybrid_name",
    "parse_hybrid_name",
]
