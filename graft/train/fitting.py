"""``fit``: one call from an image folder to a trained bundle, on Lightning.

Steps: resolve the config -> scan the data -> build the model -> make the recipe's plan -> train with
a Lightning ``Trainer`` (checkpoints, CSV log, early stopping, progressive unfreezing) -> keep the
best weights -> test -> write the bundle and the run folder::

    run/
      config.yaml        resolved options (reload with FitConfig.load(run / "config.yaml"))
      checkpoints/       last.ckpt (resume point) and best.ckpt (best validation metric)
      metrics.csv        one row per epoch: phase, losses, accuracies, learning rate
      metrics.json       final metrics
      skipped.tsv        files that could not be read (path, reason)
      bundle/            model.safetensors + model.json (graft.bundle)

This module holds the entry point and the order of the steps; each step lives with its concern:
:mod:`~graft.train.resolved` (the config), :mod:`~graft.train.run_guard` (the run folder),
:mod:`~graft.train.resume_check` (``--resume``), :mod:`~graft.train.parts` (model, plan, data),
:mod:`~graft.train.frozen_cache`, :mod:`~graft.train.trainer` (training, best weights, final
metrics), :mod:`~graft.train.improve` (WiSE-FT, weight averaging, TTA),
:mod:`~graft.train.footprint` and :mod:`~graft.train.outputs` (bundle, ``metrics.json``, report).

Example:
    >>> result = fit("data/pets", model="efficientnet_lite0", epochs=5, out="runs/pets")  # doctest: +SKIP
    >>> result.metrics["test_acc"]  # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from graft.errors import GraftError
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.footprint import footprint_end, footprint_start
from graft.train.frozen_cache import setup_cache
from graft.train.improve import improve_weights, metric_values, tta_metrics, wants_snapshots
from graft.train.loggers import log_config, log_final
from graft.train.module import GraftModule
from graft.train.outputs import save_adapter, write_history, write_outputs
from graft.train.parts import (
    FitParts,
    create_model,
    default_module,
    make_plan,
    module_options,
    prepare_fit,
    with_new_params,
)
from graft.train.plan import announce
from graft.train.resolved import resolve_config, save_resolved
from graft.train.resume_check import (
    RunIdentity,
    check_resume_checkpoint,
    check_resume_identity,
    run_identity,
)
from graft.train.run_guard import claim_run, last_checkpoint, prepare_run_dir
from graft.train.snapshots import SNAPSHOTS_DIR, WeightSnapshots
from graft.train.trainer import (
    final_metrics,
    load_best,
    make_trainer,
    out_of_memory_message,
    run_training,
)

__all__ = [  # fit's own names, and the steps' names that were defined here before (same objects)
    "FitConfig", "FitParts", "FitResult", "ModuleFactory", "TrainedHook", "check_resume_checkpoint",
    "create_model", "default_module", "fit", "footprint_end", "footprint_start", "make_plan",
    "module_options", "out_of_memory_message", "prepare_fit", "prepare_run_dir", "resolve_config",
    "save_adapter", "with_new_params",
]  # fmt: skip

log = get_logger("graft.train")


@dataclass
class FitResult:
    """What :func:`fit` produced: folders, final metrics and the per-epoch history."""

    run_dir: Path
    bundle: Path
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    config: FitConfig | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    plan_text: str = ""  # the plan and its time estimate (what --dry-run prints)


ModuleFactory = Callable[[FitParts], GraftModule]
TrainedHook = Callable[[FitParts, GraftModule, dict[str, float]], Mapping[str, float] | None]


def fit(
    data: str | None = None,
    *,
    config: FitConfig | None = None,
    callbacks: list[pl.Callback] | None = None,
    module_factory: ModuleFactory | None = None,
    on_trained: TrainedHook | None = None,
    **options: Any,
) -> FitResult:
    """Fine-tune a pretrained model on the images under ``data``; see :class:`FitConfig` for options.

    Extension hooks (how ``graft distill`` runs on this exact code path):

    - ``module_factory(parts) -> GraftModule``: builds the LightningModule from the
      :class:`FitParts` (model, splits, plan, data module...); default :func:`default_module`. A
      subclass of :class:`GraftModule` keeps the recipes, phases, schedules, checkpoints and resume.
    - ``on_trained(parts, module, metrics) -> extra metrics``: called on every rank once the best
      weights are loaded and validated/tested, before ``metrics.json`` and the bundle are written;
      the mapping it returns joins the metrics (both files). Write extra run files here, on
      ``parts.is_global_zero`` only.

    Example:
        >>> r = fit("data/flowers", recipe="auto", out="runs/flowers")  # doctest: +SKIP
        >>> r.bundle  # doctest: +SKIP
        PosixPath('runs/flowers/bundle')
    """
    begun = time.perf_counter()
    cfg = resolve_config(data, config, options)
    if cfg.preset == "fast":
        from graft.train.presets import fit_fast

        return fit_fast(cfg, begun)
    if cfg.preset == "best" and cfg.ensemble_models != []:  # [] (a member): --model alone
        from graft.train.presets import fit_best

        hooks = {"callbacks": callbacks, "module_factory": module_factory, "on_trained": on_trained}
        return fit_best(cfg, begun, **hooks)
    _tune_allocator()
    if cfg.dry_run:
        return _dry_run(cfg, begun)
    with claim_run(Path(cfg.out), data=cfg.data):  # one writer, no half-made folder
        return _fit(cfg, callbacks, module_factory, on_trained, begun)


def _fit(
    cfg: FitConfig,
    callbacks: list[pl.Callback] | None,
    module_factory: ModuleFactory | None,
    on_trained: TrainedHook | None,
    begun: float,
) -> FitResult:
    run = prepare_run_dir(cfg)
    saved = check_resume_checkpoint(last_checkpoint(run), run) if cfg.resume else {}
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = prepare_fit(cfg, run)
    identity = run_identity(
        cfg.data, cfg.model, parts.data_config, parts.splits.classes, cfg.recipe
    )
    check_resume_identity(saved, identity, cfg.resume_force)
    module = (module_factory or default_module)(parts)
    dm, plan = parts.datamodule, parts.plan
    setup_cache(cfg, module, dm, plan, parts.groups)
    sized = cfg.image_size is None
    cfg = parts.cfg = save_resolved(cfg, parts, run)
    progress = announce(cfg, parts, dm.cached_epochs, time.perf_counter() - begun, sized)
    callbacks = [*(callbacks or []), *([progress] if progress else [])]
    keep_lp, keep_epochs = wants_snapshots(cfg)
    if keep_lp or keep_epochs:
        callbacks.append(WeightSnapshots(run / SNAPSHOTS_DIR, plan, keep_lp, keep_epochs))
    counts = footprint_start(cfg, parts)
    trainer, checkpoints = make_trainer(
        cfg, run, plan, [*callbacks, RunIdentity(identity)],
        steps_per_epoch=len(dm.train_set) // cfg.batch_size,
    )  # fmt: skip
    parts.trainer = trainer
    log_config(trainer, cfg.to_dict())
    started = time.perf_counter()
    run_training(trainer, module, dm, cfg, run)
    if trainer.interrupted:
        command = getattr(module, "command", "graft fit")
        raise GraftError(f"training was interrupted; resume with `{command} --resume --out {run}`.")
    seconds = time.perf_counter() - started
    history = write_history(run, plan) if trainer.is_global_zero else []
    load_best(module, checkpoints, cfg)
    improved = improve_weights(parts, module, run / SNAPSHOTS_DIR) if keep_lp or keep_epochs else {}
    metrics = final_metrics(trainer, module, dm, seconds, len(parts.splits.train), plan)
    metrics.update(metric_values(improved))
    if cfg.tta and cfg.flip:
        metrics.update(tta_metrics(module, parts.datamodule))
    metrics.update(footprint_end(cfg, parts, counts))
    if on_trained is not None:
        metrics.update(on_trained(parts, module, metrics) or {})
    log_final(trainer, metrics)
    events = trainer.callbacks[0].events if trainer.callbacks else []
    bundle = run / "bundle"
    if trainer.is_global_zero:  # one writer under DDP; the other ranks wait for its files
        bundle = write_outputs(run, cfg, parts, module, metrics, events, improved)
    trainer.strategy.barrier("graft-fit-outputs")
    log.info("fit finished: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return FitResult(run, bundle, metrics, history, cfg, events)


def _dry_run(cfg: FitConfig, begun: float) -> FitResult:
    """``dry_run=True``: the plan and its estimate, nothing trained or written."""
    from graft.train.plan import dry_run

    resolved, text, seconds = dry_run(cfg, begun)
    run = Path(cfg.out)
    return FitResult(run, run / "bundle", {"estimated_seconds": round(seconds, 3)},
                     config=resolved, plan_text=text)  # fmt: skip


def _tune_allocator() -> None:
    try:
        from graft.runtime import tune_allocator
    except ImportError:
        return
    tune_allocator()
