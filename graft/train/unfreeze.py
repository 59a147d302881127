"""Progressive unfreezing as a Lightning callback whose state survives a restart.

:class:`ProgressiveUnfreezing` executes a :class:`graft.train.recipes.Plan`: at the start of each
epoch it enters the phase that covers it (which groups train, BatchNorm policy), and before every
optimizer step it sets each parameter group's learning rate from the phase and a pure schedule
function of the step. Its ``state_dict()`` records what is unfrozen, the unfreezing events so far and
the optimizer layout *by parameter name*; a resumed run checks that it rebuilt the same optimizer
(the layout never changes inside a run: frozen groups sit in the optimizer with LR 0 and no gradient).

Example:
    >>> from graft.train.recipes import build_plan
    >>> callback = ProgressiveUnfreezing(build_plan("progressive", 7, 100, 8, epochs=6, unfreeze="2:+2,4:all"))
    >>> callback.state_dict()["phase"]
    -1
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from graft.errors import GraftError
from graft.log import get_logger
from graft.train.recipes import Plan
from graft.train.schedules import lr_at, warmup_steps

log = get_logger("graft.train")


def group_lrs(phase: Any, names: tuple[str, ...] | list[str], factor: float) -> dict[str, float]:
    """Learning rate of every parameter group at schedule ``factor``, keyed ``lr_<group name>``.

    The head's key is ``lr_head``; frozen groups log 0. The run report draws one curve per key.

    Example:
        >>> from graft.train.recipes import Phase
        >>> group_lrs(Phase("full", 0, 1, (0, 1, 2), 1e-3, 100.0), ("stem", "blocks.0", "head"), 1.0)
        {'lr_stem': 1e-05, 'lr_blocks.0': 0.0001, 'lr_head': 0.001}
    """
    n = len(names)
    keys = [f"lr_{name}" if i < n - 1 else "lr_head" for i, name in enumerate(names)]
    return {key: phase.lr_of(i, n) * factor for i, key in enumerate(keys)}


class ResumeMismatchError(GraftError, ValueError):
    """A checkpoint's optimizer layout or plan does not match the run that tries to resume it."""


class ProgressiveUnfreezing(pl.Callback):
    """Runs ``plan``: phase changes at epoch starts, per-group learning rates at every step."""

    def __init__(self, plan: Plan, schedule: str = "cosine", floor: float = 0.0) -> None:
        self.plan = plan
        self.schedule = schedule
        self.floor = floor
        self.phase_index = -1
        self.events: list[dict[str, Any]] = []
        self._restored: dict[str, Any] | None = None
        self._layout: list = []

    @property
    def state_key(self) -> str:
        return "ProgressiveUnfreezing"

    # -- phases ---------------------------------------------------------------------------------

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        current = [[e["group"], e["decay"], list(e["names"])] for e in pl_module.layout]
        if self._restored is not None:
            self._check_layout(self._restored.get("layout") or [], current)
        self._layout = current

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        index = self.plan.index_at(trainer.current_epoch)
        phase = self.plan.phases[index]
        if index != self.phase_index or pl_module.phase != phase:
            pl_module.enter_phase(phase)
            if index != self.phase_index:
                self._record(trainer.current_epoch, index, pl_module)
            self.phase_index = index

    def _record(self, epoch: int, index: int, pl_module: pl.LightningModule) -> None:
        phase = self.plan.phases[index]
        names = [pl_module.groups.names[i] for i in phase.trainable]
        self.events.append(
            {"epoch": epoch, "phase": phase.name, "trainable": names, "bn": phase.bn}
        )
        log.info(
            "epoch %d: phase %s, training %d of %d groups",
            epoch,
            phase.name,
            len(names),
            len(pl_module.groups),
        )

    # -- learning rates -------------------------------------------------------------------------

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        phase = self.plan.phases[self.phase_index]
        per_epoch = max(int(trainer.num_training_batches), 1)
        total = phase.epochs * per_epoch
        step = (trainer.current_epoch - phase.start) * per_epoch + batch_idx
        factor = lr_at(self.schedule, step, total, warmup_steps(phase.warmup, total), self.floor)
        n_groups = len(pl_module.groups)
        for optimizer in trainer.optimizers:
            for entry, group in zip(pl_module.layout, optimizer.param_groups, strict=True):
                group["lr"] = phase.lr_of(entry["group"], n_groups) * factor
        pl_module.log_dict(
            group_lrs(phase, pl_module.groups.names, factor), on_step=True, on_epoch=False
        )

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        phase = self.plan.phases[self.phase_index] if self.phase_index >= 0 else None
        return {
            "phase": self.phase_index,
            "trainable": list(phase.trainable) if phase else [],
            "events": list(self.events),
            "plan": [
                [p.name, p.start, p.epochs, list(p.trainable), p.lr, p.lr_mult, p.bn]
                for p in self.plan
            ],
            "layout": list(self._layout),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state)
        self.events = list(state.get("events", []))
        self.phase_index = int(state.get("phase", -1))
        saved_plan = state.get("plan")
        current = self.state_dict()["plan"]
        if saved_plan is not None and [p[:4] for p in saved_plan] != [p[:4] for p in current]:
            raise ResumeMismatchError(
                "the checkpoint was written with a different recipe plan "
                f"({saved_plan}) than this run ({current}); resume with the same options "
                "(the run folder's config.yaml holds them) or start a new run in another --out."
            )

    def _check_layout(self, saved: list, current: list) -> None:
        if saved and saved != current:
            raise ResumeMismatchError(
                f"the checkpoint's optimizer has {len(saved)} parameter groups that do not match this "
                f"model's {len(current)} (by parameter name); was the model or its head changed? "
                "Resume with the same model and options."
            )
