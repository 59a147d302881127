"""The config of a run: the effective options, then every value ``auto`` chose written back.

:func:`resolve_config` merges a :class:`FitConfig` (or the defaults), the keyword options and, on
``--resume``, the run's saved ``config.yaml``; a preset fills in what was not given.
:func:`resolve_choices` then writes the run's automatic choices into it, and :func:`save_resolved`
saves the result as the run's ``config.yaml``. It holds these values (no ``null`` where graft
chose), so ``graft fit --config RUN/config.yaml --out NEW`` trains the same plan on the same
inputs: same epochs per phase, learning rates, image size, loader workers and frozen-output cache.

Example:
    >>> cfg = resolve_choices(cfg, parts, cached=True)  # doctest: +SKIP
    >>> cfg.epochs, cfg.head_epochs, cfg.lr, cfg.full_lr  # doctest: +SKIP
    (4, 2, 0.003, 0.001)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graft.distributed import is_rank_zero
from graft.errors import ConfigError
from graft.train.config import FitConfig
from graft.train.recipes import Plan, resolved_lrs
from graft.train.resume_check import check_resume_options


def resolve_choices(cfg: FitConfig, parts: Any, cached: bool) -> FitConfig:
    """``cfg`` with the automatic choices of this run filled in from ``parts`` (a ``FitParts``).

    ``cached``: whether the frozen-output cache serves some epochs (``cache_frozen``'s resolved
    value: ``True`` keeps it on when re-run, ``False`` keeps it off).
    """
    plan: Plan = parts.plan
    lr, full_lr = resolved_lrs(cfg.recipe, plan, cfg.lr, cfg.full_lr, cfg.optimizer)
    changes: dict[str, Any] = {
        "epochs": plan.epochs,
        "lr": lr,
        "full_lr": full_lr,
        "workers": parts.datamodule.workers,
        "cache_frozen": cached,
    }
    if cfg.recipe == "auto":
        changes["head_epochs"] = sum(p.epochs for p in plan if p.name == "head")
    size = tuple(parts.data_config.get("input_size", ()))[-2:]
    if cfg.image_size is None and len(size) == 2 and size[0] == size[1]:
        changes["image_size"] = int(size[0])
    return cfg.replace(**changes)


def resolve_config(
    data: str | None, config: FitConfig | None, options: dict[str, Any]
) -> FitConfig:
    """The effective config: ``config`` (or defaults), then ``options``; on resume, the saved one.

    Example:
        >>> resolve_config("data/pets", None, {"epochs": 3}).epochs
        3
    """
    base = config.to_dict() if config is not None else {}
    merged = {
        **base,
        **{k: v for k, v in options.items() if v is not None},
    }  # None: keep the default
    if isinstance(base.get("model_args"), dict) and isinstance(options.get("model_args"), dict):
        merged["model_args"] = {**base["model_args"], **options["model_args"]}  # flags on top
    if data is not None:
        merged["data"] = str(data)
    if merged.get("resume"):
        saved = Path(merged.get("out") or FitConfig.out) / "config.yaml"
        if saved.is_file():
            previous = FitConfig.load(saved).to_dict()
            changed = {k: v for k, v in options.items() if k in previous and v is not None}
            if data is not None:
                changed["data"] = str(data)
            merged = {**previous, **changed, "resume": True}
            check_resume_options(previous, merged, bool(merged.get("resume_force")))
    elif merged.get("preset"):  # explicit options win; a resumed run keeps its saved options
        from graft.train.presets import explicit_keys, with_preset

        merged = with_preset(merged, explicit_keys(base, FitConfig().to_dict(), options))
    cfg = FitConfig.from_dict(merged)
    if not cfg.data:
        raise ConfigError(
            "no training data given: pass a folder of class sub-folders (graft fit DATA)."
        )
    return cfg


def save_resolved(cfg: FitConfig, parts: Any, run: Path) -> FitConfig:
    """The config with auto's choices filled in, saved as ``run/config.yaml`` (rank 0).

    Example:
        >>> cfg = save_resolved(cfg, parts, Path("runs/pets"))  # doctest: +SKIP
    """
    resolved = resolve_choices(cfg, parts, cached=bool(parts.datamodule.cached_epochs))
    if is_rank_zero():
        resolved.save(run / "config.yaml")
    return resolved
