"""``lr_find``: Lightning's learning-rate range test on the phase a recipe trains first (or ``full``).

The LR grows exponentially from ``min_lr`` to ``max_lr`` over ``steps`` batches while the loss is
recorded; the suggestion is Lightning's (steepest descent of the smoothed loss). Results go to
``out/lr_find.json`` and ``out/lr_find.png``.

Example:
    >>> r = lr_find("data/pets", phase="head", out="runs/lr")  # doctest: +SKIP
    >>> r.suggestion  # doctest: +SKIP
    0.0028
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.tuner import Tuner

from graft.errors import ConfigError, GraftError
from graft.io import atomic_path, write_json
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.recipes import Phase
from graft.train.run_guard import claim_run
from graft.train.trainer import quiet_lightning

log = get_logger("graft.train")


@dataclass
class LRFindResult:
    """The suggested learning rate and the curve behind it."""

    suggestion: float | None
    lrs: list[float]
    losses: list[float]
    plot: Path | None
    phase: str


def lr_find(
    data: str | None = None,
    *,
    phase: str = "head",
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    steps: int = 100,
    config: FitConfig | None = None,
    **options: Any,
) -> LRFindResult:
    """Run the LR range test for ``phase`` (``head``: new head on the frozen backbone; ``full``).

    Example:
        >>> lr_find("data/flowers", phase="full", steps=50).suggestion  # doctest: +SKIP
        0.0004
    """
    from graft.train.parts import default_module, prepare_fit
    from graft.train.resolved import resolve_config

    if phase not in ("head", "full"):
        raise ConfigError(f"phase must be 'head' or 'full', got {phase!r}.")
    if not min_lr < max_lr:
        raise ConfigError(f"min_lr ({min_lr}) must be below max_lr ({max_lr}).")
    cfg = resolve_config(data, config, {**options, "resume": False})
    with claim_run(Path(cfg.out), "graft lr-find", data=cfg.data) as out:  # one writer, no debris
        out.mkdir(parents=True, exist_ok=True)
        pl.seed_everything(cfg.seed, verbose=False)
        parts = prepare_fit(cfg, out)
        module = default_module(parts)
        groups = parts.groups
        trainable = (groups.head,) if phase == "head" else tuple(range(len(groups)))
        bn = "frozen" if phase == "head" else "eval"
        module.enter_phase(Phase(phase, 0, 1, trainable, 1.0, 1.0, bn))
        return _run(cfg, module, parts.datamodule, out, phase, min_lr, max_lr, steps)


def _run(
    cfg, module, dm, out: Path, phase: str, min_lr: float, max_lr: float, steps: int
) -> LRFindResult:
    quiet_lightning()
    trainer = pl.Trainer(
        accelerator=cfg.accelerator, devices=fitting_devices(cfg.devices), precision=cfg.precision,
        logger=False, enable_checkpointing=False, enable_progress_bar=cfg.progress,
        enable_model_summary=False, default_root_dir=out, max_epochs=-1,
    )  # fmt: skip
    finder = Tuner(trainer).lr_find(
        module, datamodule=dm, min_lr=min_lr, max_lr=max_lr, num_training=steps, update_attr=False
    )
    if finder is None or not finder.results.get("lr"):
        raise GraftError(
            "the LR range test recorded no steps; use more images or a smaller --batch-size."
        )
    suggestion = finder.suggestion()
    plot = out / "lr_find.png"
    _save_plot(finder, suggestion, plot)
    result = LRFindResult(
        suggestion, list(finder.results["lr"]), list(finder.results["loss"]), plot, phase
    )
    write_json(
        out / "lr_find.json",
        {"phase": phase, "suggestion": suggestion, "lr": result.lrs, "loss": result.losses},
    )
    return result


def fitting_devices(text: str) -> Any:
    from graft.train.trainer import _devices

    return _devices(text)


def _save_plot(finder: Any, suggestion: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    fig = finder.plot(suggest=suggestion is not None, show=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
