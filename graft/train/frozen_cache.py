"""Cached outputs of the frozen backbone while only the head trains.

When every group but the head is frozen, BatchNorm keeps its stored statistics and the training
images are not augmented, the backbone maps each image to the same pooled features in every epoch.
:func:`cache_head_inputs` computes them once; training then runs only the head (``suffix``), which
gives the same gradients as running the whole model (checked in tests within float tolerance).
:func:`setup_cache` decides, for a fit run, which epochs a cache serves: the head-only ones, or
with ``cache_frozen=True`` the first phase that keeps a prefix of groups frozen.

Example:
    >>> suffix = head_suffix(model)  # doctest: +SKIP
    >>> features = cache_head_inputs(model, loader)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from graft.log import get_logger
from graft.train.groups import ModelGroups

if TYPE_CHECKING:
    from graft.train.config import FitConfig
    from graft.train.datamodule import FitDataModule
    from graft.train.module import GraftModule
    from graft.train.recipes import Plan

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


def wants_cache(cfg: Any) -> bool:
    """Whether fit caches frozen outputs: ``cache_frozen`` (default: on for auto and head), and no
    option that changes the inputs every epoch (``balance=sampler``, mixup, cutmix).

    Example:
        >>> from graft.train.config import FitConfig
        >>> wants_cache(FitConfig(data="d", recipe="head"))
        True
        >>> wants_cache(FitConfig(data="d", recipe="head", mixup=0.2))
        False
    """
    wanted = cfg.cache_frozen if cfg.cache_frozen is not None else cfg.recipe in ("auto", "head")
    return bool(wanted) and not (cfg.balance == "sampler" or cfg.mixup or cfg.cutmix)


def head_only_epochs(plan: Any, groups: ModelGroups) -> list[int]:
    """The epochs of ``plan`` whose phase :func:`can_cache` (only the head trains).

    Example:
        >>> head_only_epochs(plan, groups)  # doctest: +SKIP
        [0, 1]
    """
    return [e for p in plan for e in range(p.start, p.end) if can_cache(p, groups)]


def setup_cache(
    cfg: FitConfig, module: GraftModule, dm: FitDataModule, plan: Plan, groups: ModelGroups
) -> None:
    """Serve cached outputs of frozen layers while they stay frozen (default: on for auto and head).

    Head-only phases cache the pooled features (:func:`cache_head_inputs`); with
    ``cache_frozen=True``, the first phase that keeps a prefix of groups frozen (freeze-upto,
    progressive) caches that prefix through :func:`graft.features.prefix_cache.split_frozen_prefix`.
    Cached epochs train on unaugmented images.

    Example:
        >>> setup_cache(cfg, module, parts.datamodule, parts.plan, parts.groups)  # doctest: +SKIP
        >>> parts.datamodule.cached_epochs  # doctest: +SKIP
        range(0, 2)
    """
    if not wants_cache(cfg):
        return
    started = time.perf_counter()
    head_epochs = head_only_epochs(plan, groups)
    suffix = head_suffix(module.model, groups) if head_epochs else None
    if not head_epochs and getattr(module.model, "graft_new_params", ()):
        log.info("no pooled-feature cache: head-only epochs also train %s",
                 ", ".join(module.model.graft_new_params))  # fmt: skip
    if suffix is not None:
        loader = dm.eval_loader(dm.plain_train_set)
        dm.cached_train = cache_head_inputs(module.model, loader, cfg.channels_last)
        epochs = range(min(head_epochs), max(head_epochs) + 1)
    elif cfg.cache_frozen:
        found = _prefix_cache(module, dm, plan)
        if found is None:
            log.warning(
                "--cache-frozen: no phase keeps a cacheable frozen prefix; training uncached"
            )
            return
        suffix, epochs = found
    else:
        return
    dm.cached_epochs = module.cached_epochs = epochs
    module.cached_suffix = suffix
    log.info(
        "cached frozen outputs of %d images in %.1f s",
        len(dm.cached_train),
        time.perf_counter() - started,
    )


def _prefix_cache(
    module: GraftModule, dm: FitDataModule, plan: Plan
) -> tuple[torch.nn.Module, range] | None:
    from graft.features.prefix_cache import cache_prefix_outputs, split_frozen_prefix
    from graft.models import apply_bn_policy

    phase = next((p for p in plan if 0 not in p.trainable and p.bn != "train"), None)
    if phase is None:
        return None
    module.enter_phase(phase)
    apply_bn_policy(module.model, "frozen")  # hooks that keep frozen BatchNorm in eval mode
    split = split_frozen_prefix(module.model)
    if split is None:
        return None
    dm.cached_train = cache_prefix_outputs(split.prefix, dm.eval_loader(dm.plain_train_set))
    return split.suffix, range(phase.start, phase.end)
