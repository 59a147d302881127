"""Helpers for the hybrid tests. Tiny hybrids: test_efficientnet (ImageNet mean/std) at 48 px + test_vit (mean = std = 0.5) at 32 px."""

from __future__ import annotations

from typing import Any

from graft.hybrid import HybridModel, create_hybrid

NAME = "test_efficientnet+test_vit"
CNN_SIZE, VIT_SIZE = 48, 32
TINY: dict[str, Any] = {
    "branch_kwargs": {"test_vit": {"img_size": VIT_SIZE}},
    "branch_inputs": {"test_efficientnet": {"input_size": CNN_SIZE}},
}


def tiny_hybrid(fusion: str = "concat", num_classes: int = 3, **kwargs: Any) -> HybridModel:
    """A tiny random-init hybrid; the hybrid input is 48x48 (the larger branch)."""
    return create_hybrid(
        NAME, num_classes=num_classes, pretrained=False, fusion=fusion, **{**TINY, **kwargs}
    )
