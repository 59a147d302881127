"""Weights kept along a run for WiSE-FT and ``--average``: a callback that writes them to disk.

- ``lp.safetensors``: the weights at the end of the head-only phase (the linear-probe model that
  WiSE-FT interpolates from).
- ``epoch-NNN.safetensors``: the weights at the end of each epoch of the last phase, with the
  epoch's validation accuracy in the file's metadata (the candidates of SWA, top-k and greedy soups).

Files live in ``run/checkpoints/weights/`` (so a resumed run still has them), are written by rank 0
only, and are removed once the final weights are chosen. They hold the weights that are evaluated
and saved (the EMA copy when ``--ema`` is on).

Example:
    >>> keeper = WeightSnapshots(Path("runs/x/checkpoints/weights"), plan, lp=True, epochs=True)  # doctest: +SKIP
    >>> trainer = make_trainer(cfg, run, plan, [keeper])  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch

from graft.io import write_bytes
from graft.train.recipes import Plan

SNAPSHOTS_DIR = "checkpoints/weights"  # under the run folder: kept across a resume
LP_FILE = "lp.safetensors"


@dataclass(frozen=True)
class Snapshot:
    """One kept epoch: its number, validation accuracy (None without validation) and file."""

    epoch: int
    val_acc: float | None
    path: Path

    def load(self) -> dict[str, torch.Tensor]:
        """The weights, on the CPU."""
        from safetensors.torch import load_file

        return load_file(str(self.path))


class WeightSnapshots(pl.Callback):
    """Writes the head phase's final weights (``lp``) and each last-phase epoch's weights (``epochs``)."""

    def __init__(self, folder: Path, plan: Plan, lp: bool = False, epochs: bool = False) -> None:
        self.folder, self.plan, self.lp, self.epochs = Path(folder), plan, lp, epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        phase = self.plan.phases[self.plan.index_at(epoch)]
        if self.lp and phase.name == "head" and epoch == phase.end - 1:
            self._write(LP_FILE, pl_module, {})
        if self.epochs and phase is self.plan.phases[-1]:
            val = trainer.callback_metrics.get("val_acc")
            meta = {"epoch": str(epoch)} | ({"val_acc": str(float(val))} if val is not None else {})
            self._write(f"epoch-{epoch:03d}.safetensors", pl_module, meta)

    def _write(self, name: str, pl_module: pl.LightningModule, meta: dict[str, str]) -> None:
        from safetensors.torch import save

        model = pl_module.eval_model() if hasattr(pl_module, "eval_model") else pl_module
        state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_bytes(self.folder / name, save(state, metadata=meta or None))


def load_lp(folder: Path) -> dict[str, torch.Tensor] | None:
    """The head phase's final weights, or None when they were not kept."""
    from safetensors.torch import load_file

    path = Path(folder) / LP_FILE
    return load_file(str(path)) if path.is_file() else None


def epoch_snapshots(folder: Path) -> list[Snapshot]:
    """The kept last-phase epochs, in epoch order.

    Example:
        >>> [s.epoch for s in epoch_snapshots(Path("runs/x/checkpoints/weights"))]  # doctest: +SKIP
        [8, 9, 10]
    """
    from safetensors import safe_open

    found = []
    for path in sorted(Path(folder).glob("epoch-*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        val = meta.get("val_acc")
        found.append(
            Snapshot(int(meta.get("epoch", path.stem[6:])), float(val) if val else None, path)
        )
    return found


def remove_snapshots(folder: Path) -> None:
    """Delete the kept weights once the final ones are chosen."""
    shutil.rmtree(folder, ignore_errors=True)
