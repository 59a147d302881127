"""Run-folder outputs: per-epoch history (``metrics.csv``) and the trained bundle.

Example:
    >>> rows = write_history(Path("runs/x"), plan)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from torch import nn

from graft.io import write_text
from graft.train.config import FitConfig
from graft.train.recipes import Plan

HISTORY_KEYS = ("epoch", "phase", "train_loss_epoch", "train_acc", "val_loss", "val_acc", "lr_head")


def epoch_history(log_csvs: list[Path], plan: Plan) -> list[dict[str, Any]]:
    """Lightning's step/epoch log rows merged into one row per epoch, with the phase name.

    ``log_csvs`` are read in order (first run, then each resume); a resumed epoch replaces the
    rows an interrupted run left for it.
    """
    rows: dict[int, dict[str, Any]] = {}
    for log_csv in log_csvs:
        seen: set[int] = set()
        for epoch, row in _read_rows(log_csv):
            if epoch not in seen:
                rows.pop(epoch, None)
                seen.add(epoch)
            phase = plan.phases[plan.index_at(epoch)].name
            merged = rows.setdefault(epoch, {"epoch": epoch, "phase": phase})
            for key, value in row.items():
                if value not in ("", None) and key not in ("epoch", "step"):
                    merged[key] = float(
                        value
                    )  # later rows win: lr_head ends at the epoch's last step
    return [rows[e] for e in sorted(rows)]


def _read_rows(log_csv: Path) -> list[tuple[int, dict[str, str]]]:
    if not log_csv.is_file():
        return []
    with open(log_csv, newline="") as f:
        return [(int(float(r["epoch"])), r) for r in csv.DictReader(f) if r.get("epoch")]


def log_files(run: Path) -> list[Path]:
    """Lightning's CSV logs of a run, in order: ``logs/metrics.csv``, then each resume's ``logs-N``.

    Example:
        >>> log_files(Path("runs/x"))  # doctest: +SKIP
        [PosixPath('runs/x/logs/metrics.csv'), PosixPath('runs/x/logs-1/metrics.csv')]
    """
    resumes = [p for p in run.glob("logs-*/metrics.csv") if p.parent.name[5:].isdigit()]
    resumes.sort(key=lambda p: int(p.parent.name[5:]))
    return [p for p in [run / "logs" / "metrics.csv", *resumes] if p.is_file()]


def write_history(run: Path, plan: Plan) -> list[dict[str, Any]]:
    """Write ``run/metrics.csv`` (one row per epoch) atomically and return its rows."""
    history = epoch_history(log_files(run), plan)
    keys = list(HISTORY_KEYS) + sorted(
        {k for r in history for k in r} - set(HISTORY_KEYS) - {"train_loss_step"}
    )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in keys})
    write_text(run / "metrics.csv", buf.getvalue())
    return history


def save_trained_bundle(
    dest: Path,
    model: nn.Module,
    classes: list[str],
    data_cfg: dict[str, Any],
    cfg: FitConfig,
    plan: Plan,
    metrics: dict[str, float],
) -> Path:
    """Write the bundle with the recipe (name, phases, main options) and final metrics."""
    from graft.bundle import save_bundle

    recipe = {
        "name": cfg.recipe,
        "phases": [
            {"name": p.name, "start": p.start, "epochs": p.epochs, "trainable_groups": list(p.trainable),
             "lr": p.lr, "lr_mult": p.lr_mult, "bn": p.bn}
            for p in plan
        ],
        "optimizer": cfg.optimizer,
        "schedule": cfg.schedule,
        "batch_size": cfg.batch_size,
        "label_smoothing": cfg.label_smoothing,
        "augment": cfg.augment,
        "ema": cfg.ema,
        "seed": cfg.seed,
        "weights": cfg.weights,
    }  # fmt: skip
    if cfg.peft != "none":  # the bundle holds merged weights; this says how they were trained
        recipe["peft"] = {"method": cfg.peft, "rank": cfg.peft_rank, "alpha": cfg.peft_alpha,
                          "targets": cfg.peft_targets, "merged": True}  # fmt: skip
    return save_bundle(dest, model, classes, data_cfg, recipe=recipe, metrics=metrics)
