"""Compare an exported model's logits with the PyTorch model's on the same inputs.

Example:
    >>> p = compare(torch_logits, onnx_logits)
    >>> p["top1_agreement"], p["max_abs_diff"]  # doctest: +SKIP
    (1.0, 3.1e-06)
"""

from __future__ import annotations

from typing import Any

import torch

TIE_MARGIN = 1e-5  # torch top-1 and top-2 closer than this (relative to the logit scale): a tie


def compare(reference: torch.Tensor, exported: torch.Tensor) -> dict[str, Any]:
    """Max/mean absolute difference and top-1 agreement; inputs whose reference top-2 is a tie are not counted."""
    reference, exported = reference.float(), exported.float()
    diff = (reference - exported).abs()
    scale = max(1.0, float(reference.abs().max()))
    top2 = reference.topk(min(2, reference.shape[1]), dim=1).values
    margin = (
        (top2[:, 0] - top2[:, -1])
        if top2.shape[1] > 1
        else torch.full((len(reference),), float("inf"))
    )
    decided = margin > TIE_MARGIN * scale
    agree = reference.argmax(1) == exported.argmax(1)
    n = int(decided.sum())
    return {
        "n": int(len(reference)),
        "ties": int((~decided).sum()),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "logit_scale": scale,
        "top1_agreement": float(agree[decided].float().mean()) if n else 1.0,
    }


def within_tolerance(parity: dict[str, Any], rtol: float = 1e-3) -> bool:
    """fp32 parity: every decided top-1 agrees and the max difference is below ``rtol`` of the logit scale."""
    return (
        parity["top1_agreement"] == 1.0 and parity["max_abs_diff"] <= rtol * parity["logit_scale"]
    )
