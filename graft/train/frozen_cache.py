"""Cached outputs of the frozen backbone while only the head trains.

When every group but the head is frozen, BatchNorm keeps its stored statistics and the training
images are not augmented, the backbone maps each image to the same pooled features in every epoch.
:func:`cache_head_inputs` computes them once; training then runs only the head (``suffix``), which
gives the same gradients as running the whole model (checked in tests within float tolerance).

Example:
    >>> suffix = head_suffix(model)  # doctest: +SKIP
    >>> features = cache_head_inputs(model, loader)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from graft.log import get_logger
from graft.train.groups import ModelGroups

log = get_logger("graft.train")


def head_suffix(model: nn.Module, groups: ModelGroups) -> nn.Module | None:
    """The module that maps pooled features to logits, or ``None`` when the head group is more than it."""
    classifier = model.get_classifier()
    ids = {id(p) for p in classifier.parameters()}
    own = {n for n, p in model.named_parameters() if id(p) in ids}
    if not own or own != set(groups.params[groups.head]):
        return None
    drop = float(getattr(model, "drop_rate", 0.0) or 0.0)
    return nn.Sequential(nn.Dropout(drop), classifier) if drop > 0 else classifier


@torch.no_grad()
def cache_head_inputs(
    model: nn.Module, loader: DataLoader, channels_last: bool = False
) -> TensorDataset:
    """Pooled pre-logit features of every image in ``loader`` (eval mode), with labels, in order."""
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for batch in loader:
            if batch is None:
                continue
            x, y = batch
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float())
            labels.append(y)
    finally:
        model.train(was_training)
    return TensorDataset(torch.cat(feats), torch.cat(labels))


def can_cache(phase: Any, groups: ModelGroups) -> bool:
    """True when ``phase`` trains the head alone and BatchNorm keeps its stored statistics."""
    return tuple(phase.trainable) == (groups.head,) and phase.bn in ("frozen", "eval")
