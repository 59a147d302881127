"""Checks of :class:`graft.train.config.FitConfig` values beyond single ranges: bounds that protect
memory, an epoch count that trains, and options that only mean something with another option.

Example:
    >>> from graft.train.config import FitConfig
    >>> FitConfig(data="d", recipe="full", freeze_upto=3)
    Traceback (most recent call last):
    ...
    graft.errors.ConfigError: --freeze-upto 3 only applies to --recipe freeze-upto, not --recipe full...
"""

from __future__ import annotations

from typing import Any

from graft.bundle.checks import check_image_side
from graft.errors import ConfigError


def check_fit_options(cfg: Any) -> None:
    """Raise :class:`ConfigError` for values no run can use or options that would be ignored."""
    if cfg.image_size is not None:
        check_image_side(cfg.image_size)
    if cfg.workers is not None and cfg.workers < 0:
        raise ConfigError(
            f"workers must be 0 (load in the main process) or more, got {cfg.workers}; "
            "leave it unset to use one per spare CPU core."
        )
    if cfg.epochs == 0:
        raise ConfigError(
            "epochs 0 would write an untrained model; pass --epochs 1 or more, or leave it unset "
            "to choose from the dataset size. (To use a pretrained model without training, see "
            "`graft extract` and `graft probe`.)"
        )
    if cfg.freeze_upto is not None and cfg.recipe != "freeze-upto":
        raise ConfigError(
            f"--freeze-upto {cfg.freeze_upto} only applies to --recipe freeze-upto, not "
            f"--recipe {cfg.recipe}; drop --freeze-upto, or pass --recipe freeze-upto."
        )
    if cfg.unfreeze and cfg.recipe != "progressive":
        raise ConfigError(
            f"--unfreeze {cfg.unfreeze!r} only applies to --recipe progressive, not --recipe "
            f"{cfg.recipe}; drop --unfreeze, or pass --recipe progressive."
        )
    _check_peft(cfg)


def _check_peft(cfg: Any) -> None:
    """``--peft-*`` options need ``--peft lora|dora``; the rank must be positive."""
    if cfg.peft_rank < 1:
        raise ConfigError(f"peft_rank must be at least 1, got {cfg.peft_rank}; try 8.")
    if cfg.peft_alpha is not None and cfg.peft_alpha <= 0:
        raise ConfigError(f"peft_alpha must be positive, got {cfg.peft_alpha}; try 2 x rank.")
    if cfg.peft != "none":
        return
    given = [f"--{n.replace('_', '-')}" for n in ("peft_alpha", "peft_targets")
             if getattr(cfg, n) is not None]  # fmt: skip
    given += ["--peft-save-adapter"] if cfg.peft_save_adapter else []
    if given:
        raise ConfigError(
            f"{', '.join(given)} only apply with --peft lora or --peft dora; add --peft lora, "
            "or drop them."
        )
