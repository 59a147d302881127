"""The resolved config of a run: every value ``auto`` chose written back into :class:`FitConfig`.

``config.yaml`` in a run folder holds these values (no ``null`` where graft chose), so
``graft fit --config RUN/config.yaml --out NEW`` trains the same plan on the same inputs: same
epochs per phase, learning rates, image size, loader workers and frozen-output cache.

Example:
    >>> cfg = resolve_choices(cfg, parts, cached=True)  # doctest: +SKIP
    >>> cfg.epochs, cfg.head_epochs, cfg.lr, cfg.full_lr  # doctest: +SKIP
    (4, 2, 0.003, 0.001)
"""

from __future__ import annotations

from typing import Any

from graft.train.config import FitConfig
from graft.train.recipes import Plan, resolved_lrs


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
