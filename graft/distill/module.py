"""``DistillModule``: graft fit's LightningModule with the distillation loss added.

It subclasses :class:`graft.train.module.GraftModule`, so recipes, phases, BatchNorm policies,
learning-rate schedules, mixup/cutmix, label smoothing, EMA, checkpoints and evaluation are exactly
those of ``graft fit``. Two things change:

- the training loss is ``CE + alpha * KD + beta * sum(feature losses)`` (the CE part is graft fit's:
  label smoothing, class weights, mixup soft targets), computed by a :class:`Distiller`;
- the adapters join the optimizer as extra parameter groups that follow the head's learning rate
  (recorded in ``layout`` under the head group, so the unfreezing callback schedules them and a
  resumed run checks them by name). They are the module's ``adapters`` attribute, never part of
  ``model`` (the student), so the saved bundle holds the student only.

Example:
    >>> module = DistillModule(distiller, num_classes=3, alpha=1.0, beta=1.0)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

from graft.distill.distiller import Distiller
from graft.distill.losses import total_loss
from graft.train.module import GraftModule


class DistillModule(GraftModule):
    """Trains ``distiller.student`` against ``distiller.teacher`` with graft fit's machinery."""

    command = "graft distill"  # what graft fit's messages name (e.g. how to resume)

    def __init__(
        self,
        distiller: Distiller,
        num_classes: int,
        alpha: float = 1.0,
        beta: float = 1.0,
        **options: Any,
    ) -> None:
        super().__init__(distiller.student, num_classes, **options)
        self.adapters = distiller.adapters
        self._distiller = [distiller]  # a list: the student is already registered as ``model``
        self.alpha = float(alpha)
        self.beta = float(beta)
        if self.ema is not None:  # the EMA copy was deep-copied with the student's feature hooks
            distiller.taps.strip_copies(self.ema)

    @property
    def distiller(self) -> Distiller:
        return self._distiller[0]

    def on_fit_start(self) -> None:
        self.distiller.teacher.to(self.device)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if batch is None:
            return None
        x, y = batch
        soft = None
        if self.mixup is not None and len(y) % 2 == 0:
            x, soft = self.mixup(x, y)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        terms = self.distiller.terms(x)
        logits = terms.logits.float()
        if soft is not None:
            ce = torch.sum(-soft * torch.log_softmax(logits, dim=-1), dim=-1).mean()
        else:
            ce = self.loss_fn(logits, y)
        loss = total_loss(ce, terms.kd, terms.features, self.alpha, self.beta)
        n = len(y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train_ce", ce, on_step=False, on_epoch=True, batch_size=n)
        if terms.kd is not None:
            self.log("train_kd", terms.kd, on_step=False, on_epoch=True, batch_size=n)
        if terms.features:
            feat = torch.stack([f.detach() for f in terms.features]).sum()
            self.log("train_feat", feat, on_step=False, on_epoch=True, batch_size=n)
        self.log(
            "train_acc",
            (logits.argmax(-1) == y).float().mean(),
            on_step=False,
            on_epoch=True,
            batch_size=n,
        )
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = super().configure_optimizers()
        head = len(self.groups) - 1
        params = dict(self.adapters.named_parameters(prefix="adapters"))
        for decay in (True, False):
            names = [n for n, p in params.items() if (p.ndim > 1) == decay]
            if not names:
                continue
            optimizer.add_param_group(
                {
                    "params": [params[n] for n in names],
                    "weight_decay": self.weight_decay if decay else 0.0,
                    "lr": 0.0,
                }
            )
            self.layout.append({"group": head, "decay": decay, "names": names})
        return optimizer
