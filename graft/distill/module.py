"""``DistillModule``: graft fit's LightningModule with the distillation loss added.

It subclasses :class:`graft.train.module.GraftModule`, so recipes, phases, BatchNorm policies,
learning-rate schedules, mixup/cutmix, label smoothing, EMA, checkpoints and evaluation are exactly
those of ``graft fit``. Two things change:

- the training loss is ``CE + alpha * KD + beta * sum(feature losses)`` (the CE part is graft fit's:
  label smoothing, class weights, mixup soft targets), computed by a :class:`Distiller`;
- while graft fit's frozen-backbone cache serves pooled features (head-only epochs of ``auto`` and
  ``head``, logit KD only), the teacher's logits for the same unaugmented images are computed once
  at fit start and served with them (:meth:`attach_teacher_logits`); the head trains on
  ``CE + alpha * KD`` exactly as it would on the images;
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
from torch.utils.data import TensorDataset

from graft.distill.distiller import Distiller
from graft.distill.losses import kd_loss, total_loss
from graft.errors import GraftError
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
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and getattr(dm, "cached_train", None) is not None:
            self.attach_teacher_logits(dm)

    def attach_teacher_logits(self, dm: Any) -> None:
        """Append the teacher's logits to ``dm.cached_train`` (pooled student features, labels).

        Both come from ``dm.eval_loader(dm.plain_train_set)`` in order, so row ``i`` of each is the
        same image; the labels are compared to be sure.
        """
        cached = dm.cached_train
        if not isinstance(cached, TensorDataset) or len(cached.tensors) != 2:
            return  # already attached (a resumed fit start) or not fit's pooled-feature cache
        if self.distiller.pairs or not self.distiller.logit_kd:
            raise GraftError(
                "internal: graft fit cached the student's frozen backbone, but this distillation "
                "needs the student's feature maps; pass cache_frozen=False."
            )
        logits, labels = [], []
        for batch in dm.eval_loader(dm.plain_train_set):
            if batch is not None:
                logits.append(self.distiller.teacher(batch[0])[0].float().cpu())
                labels.append(batch[1])
        feats, y = cached.tensors
        if not labels or not torch.equal(torch.cat(labels), y):
            raise GraftError(
                "internal: the teacher's pass over the training images does not line up with the "
                "cached student features; pass cache_frozen=False."
            )
        dm.cached_train = TensorDataset(feats, y, torch.cat(logits))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if batch is None:
            return None
        if len(batch) == 3:  # cached epoch: pooled student features, labels, teacher logits
            return self._cached_step(*batch)
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

    def _cached_step(
        self, feats: torch.Tensor, y: torch.Tensor, t_logits: torch.Tensor
    ) -> torch.Tensor:
        """A head-only step on cached features: ``CE + alpha * KD`` (no feature terms: none exist)."""
        logits = self.cached_suffix(feats).float()
        ce = self.loss_fn(logits, y)
        kd = kd_loss(logits, t_logits.to(logits.dtype), self.distiller.temperature)
        loss = total_loss(ce, kd, (), self.alpha, self.beta)
        n = len(y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train_ce", ce, on_step=False, on_epoch=True, batch_size=n)
        self.log("train_kd", kd, on_step=False, on_epoch=True, batch_size=n)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=n)
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
