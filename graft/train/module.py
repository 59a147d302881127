"""The LightningModule: any model with timm's contract, a loss, and the active phase of a plan.

It does not decide *what* trains: :class:`graft.train.unfreeze.ProgressiveUnfreezing` calls
:meth:`GraftModule.enter_phase` at epoch boundaries, which sets ``requires_grad`` per group and the
BatchNorm policy, and sets each optimizer group's learning rate before every step.

BatchNorm policies (``Phase.bn``):

- ``frozen``: BatchNorm layers inside frozen groups use their stored statistics (eval mode) even
  while the model trains; trainable groups use batch statistics.
- ``eval``: every BatchNorm layer uses its stored statistics; their affine weights still train where
  the group is trainable. Used by ``auto`` in its full phase (docs/benchmarks/fit.md has the measurement).
- ``train``: every BatchNorm layer uses batch statistics and updates them, frozen or not (fastai's way).

Example:
    >>> import timm
    >>> module = GraftModule(timm.create_model("test_efficientnet", num_classes=3))  # doctest: +SKIP
"""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from graft.train.groups import ModelGroups
from graft.train.optim import build_optimizer
from graft.train.recipes import Phase


class GraftModule(pl.LightningModule):
    """Trains ``model`` (timm contract) with cross-entropy, optional mixup/cutmix and EMA."""

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: str = "adamw",
        weight_decay: float = 0.01,
        momentum: float = 0.9,
        label_smoothing: float = 0.0,
        mixup: float = 0.0,
        cutmix: float = 0.0,
        ema_decay: float | None = None,
        class_weights: torch.Tensor | None = None,
        channels_last: bool = False,
        groups: ModelGroups | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.groups = groups or ModelGroups.of(model)
        self.opt_name, self.weight_decay, self.momentum = optimizer, weight_decay, momentum
        self.channels_last, self.seed = channels_last, seed
        self.mixup = _make_mixup(mixup, cutmix, label_smoothing, num_classes)
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)
        self.eval_loss = nn.CrossEntropyLoss()
        self.ema = _make_ema(model, ema_decay)
        self.bn_groups = self.groups.bn_groups(model)
        self.phase: Phase | None = None
        self.layout: list[dict[str, Any]] = []
        self.cached_suffix: nn.Module | None = None  # head applied to cached backbone outputs
        self.cached_epochs: range = range(0)  # epochs whose train batches hold those outputs

    # -- phases ---------------------------------------------------------------------------------

    def enter_phase(self, phase: Phase) -> None:
        """Make exactly ``phase.trainable`` groups trainable and apply its BatchNorm policy."""
        self.phase = phase
        owner, pinned = self.groups.group_of(), set(getattr(self.model, "graft_frozen_params", ()))
        for name, param in self.model.named_parameters():  # pinned: weights under peft adapters
            param.requires_grad_(owner[name] in phase.trainable and name not in pinned)
        self.apply_bn_policy()

    def apply_bn_policy(self) -> None:
        """Put BatchNorm layers in train or eval mode according to the phase (see module doc)."""
        if self.phase is None or not self.model.training:
            return
        modules = dict(self.model.named_modules())
        for name, group in self.bn_groups.items():
            if self.phase.bn == "eval":
                modules[name].eval()
            elif self.phase.bn == "frozen":
                modules[name].train(group in self.phase.trainable)
            else:
                modules[name].train(True)

    def train(self, mode: bool = True) -> GraftModule:
        super().train(mode)
        if mode:
            self.apply_bn_policy()
        if self.ema is not None:
            self.ema.eval()
        return self

    # -- forward and steps ----------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if batch is None:  # every image of the batch failed to load
            return None
        x, y = batch
        if self.mixup is not None and len(y) % 2 == 0:
            x, soft = self.mixup(x, y)
            logits = self._train_forward(x)
            loss = torch.sum(-soft * torch.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        else:
            logits = self._train_forward(x)
            loss = self.loss_fn(logits.float(), y)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log(
            "train_loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(y),
            sync_dist=True,
        )
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        return loss

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cached_suffix is not None and self.current_epoch in self.cached_epochs:
            return self.cached_suffix(x)  # x holds cached outputs of the frozen backbone
        return self(x)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_step(self, batch: Any, prefix: str) -> None:
        if batch is None:
            return
        x, y = batch
        logits = self.eval_model()(
            x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
        )
        loss = self.eval_loss(logits.float(), y)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log(
            f"{prefix}_loss",
            loss,
            on_epoch=True,
            prog_bar=prefix == "val",
            batch_size=len(y),
            sync_dist=True,
        )
        self.log(
            f"{prefix}_acc",
            acc,
            on_epoch=True,
            prog_bar=prefix == "val",
            batch_size=len(y),
            sync_dist=True,
        )

    def eval_model(self) -> nn.Module:
        """The weights evaluated and saved: the EMA copy when EMA is on, else the model."""
        return self.ema.module if self.ema is not None else self.model

    # -- optimizer and checkpoints --------------------------------------------------------------

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer, self.layout = build_optimizer(
            self.model, self.groups, self.opt_name, self.weight_decay, self.momentum
        )
        return optimizer

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:  # random draws of an epoch (dropout, mixup) depend on (seed, epoch) only
            seed_everything_quietly(
                self.seed * 7919 + self.current_epoch * 104729 + self.global_rank
            )


def _make_mixup(mixup: float, cutmix: float, smoothing: float, num_classes: int) -> Any:
    if not mixup and not cutmix:
        return None
    from timm.data import Mixup

    return Mixup(
        mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=smoothing, num_classes=num_classes
    )


def _make_ema(model: nn.Module, decay: float | None) -> nn.Module | None:
    if decay is None:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay)


def seed_everything_quietly(seed: int) -> None:
    """Seed torch, numpy and random (what an epoch's dropout and mixup draw from)."""
    seed %= 2**32
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
