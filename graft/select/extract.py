"""Pooled features (and source-head probabilities) of one candidate on a sample of images.

Extraction goes through :func:`graft.features.extract` (``layer=None, pool="avg"``: the model's own
``forward_head(pre_logits=True)``), so with a store folder a second run on the same images, model and
weights reuses the stored features. When the model still has its pretrained classifier, applying
``get_classifier()`` to those pre-logit features gives the source logits that LEEP and NCE need,
without a second pass. Unreadable images are skipped (and reported), never fatal.

Example:
    >>> from graft.models import create_model  # doctest: +SKIP
    >>> f = extract_features(create_model("test_resnet", pretrained=False), samples, classes, cfg)  # doctest: +SKIP
    >>> f.features.shape  # doctest: +SKIP
    (60, 64)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from graft.errors import DataError


@dataclass
class Extracted:
    """Features ``n x D``, labels ``n``, source probabilities ``n x Z`` (or None) and seconds taken."""

    features: np.ndarray
    labels: np.ndarray
    source_probs: np.ndarray | None
    seconds: float


def extract_features(
    model: nn.Module,
    samples: Sequence[tuple[str, int]],
    classes: Sequence[str],
    image_size: int | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    with_source_probs: bool = False,
    store: str | os.PathLike | None = None,
) -> Extracted:
    """Pooled pre-logit features of ``samples`` under the model's eval transform (see module doc)."""
    from graft.data import Splits
    from graft.features import extract

    splits = Splits(classes=list(classes), train=[(os.fspath(p), int(y)) for p, y in samples])
    start = time.perf_counter()
    feats = extract(
        splits,
        model=model,
        image_size=image_size,
        batch_size=batch_size,
        workers=0,
        out=store,
        accelerator=device,
        devices=1,
        progress=False,
    )
    if len(feats) == 0:
        raise DataError(f"none of the {len(samples)} sampled images could be read.")
    f = np.asarray(feats.features, dtype=np.float64).reshape(len(feats), -1)
    probs = _source_probs(model, f, device) if with_source_probs else None
    return Extracted(
        f, np.asarray(feats.labels, dtype=np.int64), probs, time.perf_counter() - start
    )


def _source_probs(model: nn.Module, features: np.ndarray, device: str) -> np.ndarray:
    head = model.get_classifier().eval()
    with torch.inference_mode():
        logits = head(torch.from_numpy(features).float().to(device)).float()
        return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)
