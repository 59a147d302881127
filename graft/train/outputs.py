"""Run-folder outputs: per-epoch history (``metrics.csv``), the trained bundle (with ``--peft``,
merged weights and optionally the adapters alone), ``metrics.json`` and the HTML report.

Example:
    >>> rows = write_history(Path("runs/x"), plan)  # doctest: +SKIP
    >>> bundle = write_outputs(Path("runs/x"), cfg, parts, module, metrics, events, {})  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from torch import nn

from graft.io import write_json, write_text
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.recipes import Plan
from graft.train.snapshots import SNAPSHOTS_DIR, remove_snapshots

log = get_logger("graft.train")

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


def write_outputs(
    run: Path,
    cfg: FitConfig,
    parts: Any,
    module: Any,
    metrics: dict[str, float],
    events: list[dict[str, Any]],
    improved: dict[str, Any],
) -> Path:
    """The files of a finished run (call on rank 0): the bundle, ``adapter.safetensors`` with
    ``--peft-save-adapter``, ``metrics.json`` (metrics, unfreezing events, the WiSE/averaging
    record ``improved``) and the report; the kept weight snapshots are removed. Returns the bundle.

    ``parts`` is the run's :class:`graft.train.parts.FitParts`, ``module`` its trained
    :class:`graft.train.module.GraftModule`.

    Example:
        >>> write_outputs(Path("runs/x"), cfg, parts, module, {"val_acc": 0.9}, [], {})  # doctest: +SKIP
        PosixPath('runs/x/bundle')
    """
    model = model_to_save(module.eval_model(), cfg)
    bundle = save_trained_bundle(
        run / "bundle", model, parts.splits.classes, parts.data_config, cfg, parts.plan, metrics
    )
    if cfg.peft_save_adapter:  # next to the merged weights, once the bundle exists
        save_adapter(module.eval_model(), bundle / "adapter.safetensors")
    write_json(run / "metrics.json", {"metrics": metrics, "unfreezing": events,
                                      **({"weights": improved} if improved else {})})  # fmt: skip
    remove_snapshots(run / SNAPSHOTS_DIR)
    if cfg.report:
        write_report(run)
    return bundle


def model_to_save(model: nn.Module, cfg: FitConfig) -> nn.Module:
    """The weights a bundle holds: with ``--peft``, adapters merged (no peft needed to load).

    Example:
        >>> model_to_save(module.eval_model(), cfg)  # doctest: +SKIP
    """
    if cfg.peft == "none":
        return model
    from graft.models.peft_adapt import merged_copy

    return merged_copy(model)


def save_adapter(model: nn.Module, path: Path) -> Path:
    """Write the adapters and head of an adapted ``model`` alone (safetensors + a JSON header).

    Example:
        >>> save_adapter(parts.model, Path("runs/x/bundle/adapter.safetensors"))  # doctest: +SKIP
    """
    import json

    from safetensors.torch import save_file

    from graft.io import atomic_path
    from graft.models.peft_adapt import adapter_state

    info = model.graft_peft
    meta = {"format": "graft-peft-adapter", "peft": json.dumps(info.to_dict()),
            "target_modules": json.dumps(list(info.targets))}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(adapter_state(model), str(tmp), metadata=meta)
    log.info("adapter (%s, rank %d) written to %s", info.method, info.rank, path)
    return path


def write_report(run: Path) -> None:
    """The run's HTML report (rank 0, every run file written); a failure is a warning, not an error.

    Example:
        >>> write_report(Path("runs/x"))  # doctest: +SKIP
    """
    from graft.train.reporters import write_run_report  # graft.report installs it

    path = write_run_report(run)
    if path is not None:
        log.info("report: %s", path)
