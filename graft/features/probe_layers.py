"""``probe(..., layer="auto")``: probe the last stage and the one before it, keep the better.

The pooled pre-logits of the last stage are the usual probe features, but on data far from the
backbone's pre-training images an earlier stage often separates the classes better (measured on
graft's 28x28 samples with EfficientNet-Lite0 at 96 px, 2,000 / 1,238 training images: stage -2
gave 0.9749 against 0.9443 on digits and 0.946 against 0.941 on animals;
docs/benchmarks/quality.md). ``auto`` fits a probe on each candidate (:func:`candidate_layers`)
and keeps the one with the higher cross-validated accuracy on the training images, so the test
images play no part in the choice; ties keep the last stage. It costs one extraction and one
search per candidate.

Example:
    >>> import graft.models as gm
    >>> candidate_layers(gm.create_model("test_efficientnet", num_classes=0, pretrained=False))
    [None, -2]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from graft.log import get_logger

log = get_logger("graft.features")

AUTO = "auto"


def candidate_layers(model: nn.Module) -> list[int | None]:
    """``[None, -2]`` (last stage, the stage before it) or ``[None]`` without ``feature_info``."""
    stages = getattr(model, "feature_info", None)
    try:
        count = len(stages) if stages is not None else 0
    except TypeError:
        count = 0
    return [None, -2] if count >= 2 else [None]


def best_layer(
    candidates: list[int | None], run: Callable[[int | None], tuple[Any, Any]]
) -> tuple[Any, Any, dict[str, Any]]:
    """Run ``run(layer) -> (backbone, ProbeResult)`` for each candidate; keep the best CV accuracy.

    Returns the winner's backbone and result, and a summary ``{"chosen": layer, "cv": {...}}``
    that :func:`graft.probe` stores in the bundle's metrics.

    Example:
        >>> from types import SimpleNamespace as R
        >>> best_layer([None, -2], lambda layer: (None, R(cv_accuracy=0.9 if layer else 0.8)))[2]
        {'chosen': -2, 'cv_accuracy': {'last': 0.8, '-2': 0.9}}
    """
    best: tuple[Any, Any] | None = None
    chosen: int | None = None
    scores: dict[str, float | None] = {}
    for layer in candidates:
        backbone, result = run(layer)
        cv = result.cv_accuracy
        scores["last" if layer is None else str(layer)] = cv
        if best is None or (cv or 0.0) > (best[1].cv_accuracy or 0.0):
            best, chosen = (backbone, result), layer
    if best is None:
        raise ValueError("best_layer needs at least one candidate layer")
    log.info("layer auto: cross-validated accuracy %s; kept %s", scores, chosen or "the last stage")
    return best[0], best[1], {"chosen": chosen, "cv_accuracy": scores}
