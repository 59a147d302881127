"""The Lightning ``Trainer`` of a fit run: callbacks, logger, precision and devices from the config.

:func:`make_trainer` builds it; :func:`run_training` runs it (out-of-memory errors become advice);
:func:`load_best` and :func:`final_metrics` read what it produced.

Example:
    >>> trainer, best = make_trainer(FitConfig(data="d", out="runs/x"), Path("runs/x"), plan)  # doctest: +SKIP
    >>> run_training(trainer, module, datamodule, cfg, Path("runs/x"))  # doctest: +SKIP
    >>> load_best(module, best, cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from graft.distributed import sync_batchnorm_plugin
from graft.errors import ConfigError, GraftError
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.guards import FiniteLossGuard
from graft.train.loggers import PhaseLogger, make_loggers
from graft.train.recipes import Plan
from graft.train.resume_check import resume_path
from graft.train.run_guard import last_checkpoint
from graft.train.unfreeze import ProgressiveUnfreezing

if TYPE_CHECKING:
    from graft.train.datamodule import FitDataModule
    from graft.train.module import GraftModule

log = get_logger("graft.train")


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` (the resume point) at the end of every epoch, whatever the monitored metric did.

    Lightning's ``save_last=True`` only writes ``last.ckpt`` in an epoch that also saved a top-k
    checkpoint, so with validation a crash resumed from the last *improving* epoch and lost the
    epochs after it. Its own class gives it its own state in checkpoints (Lightning keys callback
    states by class name and options).

    Example:
        >>> LastCheckpoint(Path("runs/x/checkpoints")).filename
        'last'
    """

    def __init__(self, dirpath: Path) -> None:
        super().__init__(
            dirpath=dirpath, filename="last", monitor=None, save_top_k=1,
            auto_insert_metric_name=False, enable_version_counter=False,
            save_on_train_epoch_end=True,
        )  # fmt: skip


def make_trainer(
    cfg: FitConfig,
    run: Path,
    plan: Plan,
    extra: list[pl.Callback] | None = None,
    steps_per_epoch: int = 50,
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """(trainer, best-checkpoint callback) for ``plan``, writing under ``run``."""
    monitor = cfg.monitor if cfg.val_split or _has_val(cfg) else None
    mode = "min" if "loss" in cfg.monitor else "max"
    best = ModelCheckpoint(
        dirpath=run / "checkpoints", filename="best", monitor=monitor, mode=mode,
        save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False,
        save_on_train_epoch_end=True,  # after validation: a resume starts cleanly at the next epoch
    )  # fmt: skip
    guard = FiniteLossGuard(run / "checkpoints", run)  # before ModelCheckpoint: no NaN checkpoint
    callbacks: list[pl.Callback] = [
        ProgressiveUnfreezing(plan, cfg.schedule),
        EpochTimer(),
        guard,
        best,
        LastCheckpoint(run / "checkpoints"),
        PhaseLogger(plan),
    ]
    if cfg.early_stop is not None and monitor:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stop))
    callbacks += list(extra or [])
    quiet_lightning()
    trainer = pl.Trainer(
        max_epochs=plan.epochs,
        accelerator=cfg.accelerator,
        devices=_devices(cfg.devices),
        strategy=_strategy(cfg),
        num_nodes=cfg.num_nodes,
        plugins=[sync_batchnorm_plugin()] if cfg.sync_bn else None,
        precision=cfg.precision,
        deterministic=cfg.deterministic,
        gradient_clip_val=cfg.grad_clip,
        callbacks=callbacks,
        logger=make_loggers(cfg.logger, run, _log_version(run, cfg.resume)),
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        reload_dataloaders_every_n_epochs=1,
        log_every_n_steps=max(1, min(50, steps_per_epoch // 4)),
        default_root_dir=run,
    )
    _check_sync_bn(cfg, trainer)
    return trainer, best


def _check_sync_bn(cfg: FitConfig, trainer: pl.Trainer) -> None:
    """PyTorch's DDP refuses SyncBatchNorm on CPU processes: say so before training starts."""
    from lightning.pytorch.accelerators import CUDAAccelerator

    several = trainer.num_devices * trainer.num_nodes > 1
    if cfg.sync_bn and several and not isinstance(trainer.accelerator, CUDAAccelerator):
        raise ConfigError(
            f"--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm does not run in CPU processes "
            f"(accelerator: {type(trainer.accelerator).__name__}). Drop --sync-bn, or train "
            "with --accelerator gpu."
        )


class EpochTimer(pl.Callback):
    """Logs ``epoch_seconds`` and ``train_images_per_s``: epoch start to last training batch
    (data loading included, validation excluded)."""

    def __init__(self) -> None:
        self._started = self._last = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = self._last = time.perf_counter()
        self._images = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last = time.perf_counter()
        self._images += len(batch[1]) if batch is not None else 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = max(self._last - self._started, 1e-9)
        pl_module.log("epoch_seconds", seconds, on_epoch=True, sync_dist=True, reduce_fx="max")
        pl_module.log(
            "train_images_per_s",
            self._images / seconds,
            on_epoch=True,
            sync_dist=True,
            reduce_fx="sum",
        )


def _strategy(cfg: FitConfig) -> str:
    """``cfg.strategy``, with DDP's unused-parameter detection for recipes that freeze layers.

    Layers frozen after DDP wrapped the model get no gradient, and plain ``ddp`` stops at the first
    step; ``--recipe full`` trains every parameter and keeps the faster plain strategy.
    """
    if cfg.recipe == "full":
        return cfg.strategy
    return {
        "ddp": "ddp_find_unused_parameters_true",
        "ddp_spawn": "ddp_spawn_find_unused_parameters_true",
    }.get(cfg.strategy, cfg.strategy)


def _log_version(run: Path, resume: bool) -> str:
    """``logs`` for a new run; ``logs-1``, ``logs-2`` ... for each resume (earlier logs are kept)."""
    if not resume:
        return "logs"
    n = 1
    while (run / f"logs-{n}").exists():
        n += 1
    return f"logs-{n}"


def _has_val(cfg: FitConfig) -> bool:
    root = Path(cfg.data or "")
    return (root / "val").is_dir()


def _devices(text: str) -> Any:
    text = str(text).strip()
    if text.isdigit() or (text.startswith("-") and text[1:].isdigit()):
        return int(text)
    if "," in text:
        return [int(t) for t in text.split(",") if t.strip()]
    return text


def quiet_lightning() -> None:
    """Silence Lightning's tips and warnings that say nothing about the user's run."""
    import logging
    import warnings

    for pattern in (".*LeafSpec.*", ".*smaller than the logging interval.*", ".*does not have many workers.*",
                    ".*litlogger.*", ".*GPU available but not used.*", ".*exists and is not empty.*", ".*module\\(s\\) in eval mode.*"):  # fmt: skip
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


# ------------------------------------------------------------------------------ running it


def run_training(
    trainer: pl.Trainer, module: GraftModule, dm: FitDataModule, cfg: FitConfig, run: Path
) -> None:
    """``trainer.fit`` (resuming from ``last.ckpt`` with ``--resume``), out-of-memory errors turned
    into advice (:func:`out_of_memory_message`).

    Example:
        >>> run_training(trainer, module, parts.datamodule, cfg, Path("runs/x"))  # doctest: +SKIP
    """
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=resume_path(cfg, run), weights_only=True)
    except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
        if isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower():
            raise GraftError(out_of_memory_message(cfg, run, err)) from err
        raise


def out_of_memory_message(cfg: FitConfig, run: Path, err: BaseException) -> str:
    """Advice for a run that ran out of (GPU or CPU) memory: smaller batch, lower precision, resume.

    Example:
        >>> out_of_memory_message(FitConfig(data="d", batch_size=32), Path("r"), RuntimeError("x"))[:28]
        'out of memory while training'
    """
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    gpu = isinstance(err, torch.OutOfMemoryError) or "cuda" in str(err).lower()
    precision = (
        "--precision bf16-mixed (halves activation memory on a GPU)"
        if gpu and cfg.precision == "32"
        else None
    )
    size = cfg.image_size
    smaller = f"--image-size {max(16, (size or 224) * 3 // 4)}" if size != 16 else None
    tips = [
        f"--batch-size {max(1, cfg.batch_size // 2)}",
        precision,
        smaller and f"a smaller {smaller}",
    ]
    resume = (
        f"; finished epochs are kept: add --resume --out {run} to continue"
        if last_checkpoint(run).is_file()
        else f"; no epoch had finished, so start again (the --out folder {run} can be reused)"
    )
    return (
        f"out of memory while training (batch size {cfg.batch_size}): {first}. Try "
        + ", ".join(t for t in tips if t)
        + resume
        + "."
    )


def load_best(module: GraftModule, checkpoints: Any, cfg: FitConfig) -> None:
    """Load the weights of the best checkpoint (by ``cfg.monitor``) into ``module``, if one was kept.

    Example:
        >>> load_best(module, checkpoints, cfg)  # doctest: +SKIP
    """
    best = getattr(checkpoints, "best_model_path", "")
    if not best or not Path(best).is_file():
        return
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    log.info(
        "kept the weights of %s (%s = %s)",
        Path(best).name,
        cfg.monitor,
        checkpoints.best_model_score,
    )


def final_metrics(
    trainer: pl.Trainer,
    module: GraftModule,
    dm: FitDataModule,
    seconds: float,
    n_train: int,
    plan: Plan,
) -> dict[str, float]:
    """Time, epochs and throughput, then validation and test metrics of the weights ``module`` holds.

    Example:
        >>> final_metrics(trainer, module, dm, 12.5, 600, plan)["fit_seconds"]  # doctest: +SKIP
        12.5
    """
    metrics: dict[str, float] = {
        "fit_seconds": round(seconds, 2),
        "epochs": float(trainer.current_epoch),
    }
    if dm.val_set is not None:
        metrics.update(_evaluate(trainer, module, dm.val_dataloader()))
    if dm.test_set is not None:
        metrics.update(_evaluate(trainer, module, dm.test_dataloader(), test=True))
    metrics["train_images_per_s"] = round(n_train * trainer.current_epoch / max(seconds, 1e-9), 2)
    return metrics


def _evaluate(
    trainer: pl.Trainer, module: GraftModule, loader: Any, test: bool = False
) -> dict[str, float]:
    run = trainer.test if test else trainer.validate
    results = run(module, dataloaders=loader, verbose=False)
    return {k: round(float(v), 6) for k, v in (results[0] if results else {}).items()}
