"""``FiniteLossGuard``: stop training at the first NaN/inf training loss, before a checkpoint is saved.

A non-finite loss (learning rate far too high, broken images, fp16 overflow) poisons the weights
at the next optimizer step; training on would overwrite ``last.ckpt`` with NaN weights and write a
NaN bundle. The guard checks the loss of every training batch and raises a
:class:`graft.errors.GraftError` naming the epoch and step, the last good checkpoint and what to do.
It runs before ``ModelCheckpoint`` (epoch-end saves), so the last good checkpoint stays intact.

Example:
    >>> guard = FiniteLossGuard(Path("runs/x/checkpoints"))  # doctest: +SKIP
    >>> pl.Trainer(callbacks=[guard, ModelCheckpoint(...)])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from graft.errors import GraftError


class NonFiniteLossError(GraftError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(pl.Callback):
    """Raise :class:`NonFiniteLossError` as soon as a training batch's loss is NaN or inf."""

    def __init__(self, checkpoint_dir: str | Path, run_dir: str | Path | None = None) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.run_dir = Path(run_dir) if run_dir is not None else self.checkpoint_dir.parent

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach().float()) if isinstance(loss, torch.Tensor) else float(loss)
        if math.isfinite(value):
            return
        raise NonFiniteLossError(self.message(value, trainer.current_epoch, batch_idx, trainer))

    def message(self, value: float, epoch: int, batch_idx: int, trainer: pl.Trainer) -> str:
        """What happened, where the last good weights are, and how to go on."""
        last = self.checkpoint_dir / "last.ckpt"
        kept = (
            f"the last good checkpoint {last} (end of an earlier epoch) is intact"
            if last.is_file()
            else "no checkpoint had been written yet (the first epoch did not finish)"
        )
        lr = _current_lr(trainer)
        lower = f" (it is {lr:.3g}; try {lr / 10:.3g})" if lr else ""
        resume = (
            f"then continue with `graft fit --resume --out {self.run_dir} --lr LOWER`"
            if last.is_file()
            else f"then start again with a lower --lr in a new --out (or delete {self.run_dir})"
        )
        return (
            f"training loss is {value} (not finite) at epoch {epoch}, step {batch_idx} "
            f"(global step {trainer.global_step}); training stopped and no bundle was written; "
            f"{kept}. Lower the learning rate --lr{lower}, keep --grad-clip on, use --precision 32 "
            f"instead of 16-mixed, and check the data for broken or extreme images; {resume}."
        )


def _current_lr(trainer: pl.Trainer) -> float | None:
    try:
        return max(g["lr"] for opt in trainer.optimizers for g in opt.param_groups)
    except (AttributeError, ValueError, KeyError, TypeError):
        return None
