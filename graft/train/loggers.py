"""Experiment tracking through Lightning's loggers: ``--logger csv,tensorboard,mlflow``.

Every logger is offline and writes inside the run folder:

- ``csv`` (always on: the source of ``metrics.csv``): ``RUN/logs/metrics.csv`` and ``hparams.yaml``;
- ``tensorboard``: event files under ``RUN/tensorboard/`` (``tensorboard --logdir RUN/tensorboard``);
  needs the ``tensorboard`` package (``pip install 'graft[tracking]'``);
- ``mlflow``: a local MLflow file store ``RUN/mlruns/`` (``MLFLOW_ALLOW_FILE_STORE=true mlflow ui
  --backend-store-uri RUN/mlruns``; MLflow 3 asks for that opt-in, which graft sets for its own
  process), experiment ``graft``, run named after the run folder; needs ``mlflow-skinny`` or
  ``mlflow`` (same extra).

Each gets the resolved config as hyperparameters, the per-group learning rates at every step
(``lr_<group>``, logged by :class:`graft.train.unfreeze.ProgressiveUnfreezing`), the phase index at
every epoch start (``phase``, from :class:`PhaseLogger`) and the final metrics (``final_<name>``).

Example:
    >>> parse_loggers("csv, tensorboard")
    ('csv', 'tensorboard')
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from graft.errors import ConfigError, raise_unknown

LOGGERS = ("csv", "tensorboard", "mlflow")
_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",)}


def parse_loggers(text: str) -> tuple[str, ...]:
    """``"csv,tensorboard"`` -> ``("csv", "tensorboard")``; ``csv`` is always first (added if absent).

    Example:
        >>> parse_loggers("mlflow")
        ('csv', 'mlflow')
    """
    names = [t.strip().lower() for t in str(text or "").split(",") if t.strip()]
    for name in names:
        if name not in LOGGERS:
            raise_unknown("logger", name, LOGGERS, "Give a comma-separated list: csv,tensorboard.")
    return ("csv", *dict.fromkeys(n for n in names if n != "csv"))


def check_available(names: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` naming the package to install when a logger's package is missing."""
    for name in names:
        modules = _PACKAGES.get(name, ())
        if modules and not any(importlib.util.find_spec(m) for m in modules):
            raise ConfigError(
                f"--logger {name} needs the {modules[0]} package, which is not installed; install "
                f"it with `pip install 'graft[tracking]'` (or `pip install {modules[0]}`), or drop "
                f"{name} from --logger (csv is always on)."
            )


def make_loggers(text: str, run: Path, version: str) -> list[Any]:
    """Lightning loggers for ``--logger text``, writing under ``run`` (``version``: the CSV folder).

    Example:
        >>> [type(x).__name__ for x in make_loggers("csv", Path("runs/x"), "logs")]
        ['CSVLogger']
    """
    from lightning.pytorch.loggers import CSVLogger

    names = parse_loggers(text)
    check_available(names)
    loggers: list[Any] = [CSVLogger(run, name="", version=version)]
    if "tensorboard" in names:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run, name="tensorboard", version=version,
                                         default_hp_metric=False))  # fmt: skip
    if "mlflow" in names:
        from lightning.pytorch.loggers import MLFlowLogger

        # MLflow 3 keeps its offline file store behind this opt-in (a database needs a server
        # package); set only when the user has not chosen
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        store = (Path(run) / "mlruns").resolve()
        loggers.append(MLFlowLogger(experiment_name="graft", run_name=Path(run).name,
                                    tracking_uri=store.as_uri()))  # fmt: skip
    return loggers


def log_config(trainer: pl.Trainer, config: dict[str, Any]) -> None:
    """The resolved config as every logger's hyperparameters (nested values flattened by Lightning)."""
    hparams = {k: ("null" if v is None else v) for k, v in config.items()}
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams)


def log_final(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
    """Final metrics as ``final_<name>`` at the last step, then flush every logger."""
    if not trainer.is_global_zero:
        return
    final = {f"final_{k}": float(v) for k, v in metrics.items()}
    for logger in trainer.loggers:
        logger.log_metrics(final, step=trainer.global_step)
        logger.save()


class PhaseLogger(pl.Callback):
    """Logs ``phase`` (index of the plan's phase) at every epoch start, so phase changes show up
    as steps in every logger.

    Example:
        >>> PhaseLogger(plan)  # doctest: +SKIP
    """

    def __init__(self, plan: Any) -> None:
        self.plan = plan

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        index = self.plan.index_at(trainer.current_epoch)
        for logger in trainer.loggers:
            logger.log_metrics({"phase": float(index)}, step=trainer.global_step)
