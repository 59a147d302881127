"""Pooled features (and source-head probabilities) of one candidate on a sample of images.

One pass per candidate: ``forward_features`` then ``forward_head(pre_logits=True)`` gives the pooled
features; when the model still has its pretrained classifier, applying ``get_classifier()`` to them
gives the source logits that LEEP and NCE need, without a second pass. Unreadable images are skipped
(and reported by :class:`graft.data.ImageDataset`), never fatal.

Example:
    >>> from graft.models import create_model  # doctest: +SKIP
    >>> f = extract_features(create_model("test_resnet", pretrained=False), samples, cfg)  # doctest: +SKIP
    >>> f.features.shape  # doctest: +SKIP
    (60, 64)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from graft.data import ImageDataset, build_transforms, collate_skip
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
    data_cfg: Mapping[str, Any],
    device: str = "cpu",
    batch_size: int = 32,
    with_source_probs: bool = False,
) -> Extracted:
    """Pooled pre-logit features of ``samples`` under the eval transform of ``data_cfg``."""
    in_chans = int(data_cfg["input_size"][0])
    dataset = ImageDataset(samples, build_transforms(data_cfg, train=False), in_chans=in_chans)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_skip)
    model = model.eval().to(device)
    head = model.get_classifier() if with_source_probs else None
    feats, labels, probs = [], [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            if batch is None:
                continue
            x, y = batch
            pooled = model.forward_head(model.forward_features(x.to(device)), pre_logits=True)
            pooled = pooled.flatten(1).float()
            feats.append(pooled.cpu().numpy())
            labels.append(np.asarray(y))
            if head is not None:
                probs.append(torch.softmax(head(pooled).float(), dim=1).cpu().numpy())
    if not feats:
        raise DataError(f"none of the {len(samples)} sampled images could be read.")
    return Extracted(
        features=np.concatenate(feats).astype(np.float64),
        labels=np.concatenate(labels).astype(np.int64),
        source_probs=np.concatenate(probs).astype(np.float64) if probs else None,
        seconds=time.perf_counter() - start,
    )
