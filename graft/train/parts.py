"""What ``fit`` builds before training: the model, its data config and groups, the plan, the data.

:func:`prepare_fit` scans the data, builds the model (offline weights, small-init head, adapters
with ``--peft``), resolves the preprocessing, splits the model into groups, makes the recipe's plan
and the data module, and hands them over as a :class:`FitParts`. ``graft lr-find``, ``--dry-run``
and a custom ``module_factory`` start from the same parts.

Example:
    >>> parts = prepare_fit(FitConfig(data="data/pets", out="runs/p"), Path("runs/p"))  # doctest: +SKIP
    >>> module = default_module(parts)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from graft.distributed import is_rank_zero
from graft.errors import ConfigError
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.datamodule import FitDataModule
from graft.train.groups import ModelGroups
from graft.train.module import GraftModule
from graft.train.recipes import Plan, build_plan

log = get_logger("graft.train")


@dataclass
class FitParts:
    """What :func:`fit` built before training: handed to its ``module_factory`` and ``on_trained`` hooks.

    ``trainer`` is set once the Lightning ``Trainer`` exists (so ``on_trained`` sees it).

    Example:
        >>> def factory(parts: FitParts) -> GraftModule:  # doctest: +SKIP
        ...     return MyModule(parts.model, parts.splits.num_classes, **module_options(parts))
        >>> fit("data/pets", module_factory=factory, out="runs/mine")  # doctest: +SKIP
    """

    cfg: FitConfig
    run: Path
    splits: Any
    model: torch.nn.Module
    data_config: dict[str, Any]
    groups: ModelGroups
    plan: Plan
    datamodule: FitDataModule
    trainer: pl.Trainer | None = None

    @property
    def is_global_zero(self) -> bool:
        """True on the process that writes the run's files (rank 0, or the only one)."""
        return self.trainer.is_global_zero if self.trainer is not None else is_rank_zero()


def prepare_fit(cfg: FitConfig, run: Path) -> FitParts:
    """Scan the data, build the model, its data config, groups, the recipe's plan and the data module.

    Example:
        >>> parts = prepare_fit(FitConfig(data="data/pets", out="runs/p"), Path("runs/p"))  # doctest: +SKIP
        >>> parts.splits.num_classes, len(parts.plan.phases)  # doctest: +SKIP
        (37, 2)
    """
    splits = _scan(cfg)
    size = _image_size(cfg, splits)  # before the model: a hybrid's branches are built for it
    model = create_model(cfg, splits.num_classes, size)
    data_cfg = _data_config(cfg, model, splits, size)
    groups = ModelGroups.of(model)
    plan = make_plan(cfg, groups, len(splits.train), tuple(getattr(model, "graft_new_params", ())))
    dm = _make_datamodule(cfg, splits, data_cfg, plan)
    return FitParts(cfg, run, splits, model, data_cfg, groups, plan, dm)


def default_module(parts: FitParts) -> GraftModule:
    """graft fit's LightningModule for ``parts`` (cross-entropy, mixup/cutmix, EMA, class weights).

    Example:
        >>> module = default_module(prepare_fit(cfg, run))  # doctest: +SKIP
    """
    return GraftModule(parts.model, parts.splits.num_classes, **module_options(parts))


def module_options(parts: FitParts) -> dict[str, Any]:
    """:class:`GraftModule` keyword arguments from the config (puts the model in channels-last if asked).

    Example:
        >>> sorted(module_options(parts))[:3]  # doctest: +SKIP
        ['channels_last', 'class_weights', 'cutmix']
    """
    cfg, splits = parts.cfg, parts.splits
    weights = None
    if cfg.balance == "weights":
        from graft.data import class_weights

        weights = class_weights([y for _, y in splits.train], splits.num_classes)
    if cfg.channels_last:
        parts.model.to(memory_format=torch.channels_last)  # in place: modules convert their tensors
    return {
        "optimizer": cfg.optimizer, "weight_decay": cfg.weight_decay, "momentum": cfg.momentum,
        "label_smoothing": cfg.label_smoothing, "mixup": cfg.mixup, "cutmix": cfg.cutmix,
        "ema_decay": cfg.ema_decay if cfg.ema else None, "class_weights": weights,
        "channels_last": cfg.channels_last, "groups": parts.groups, "seed": cfg.seed,
    }  # fmt: skip


def make_plan(
    cfg: FitConfig, groups: ModelGroups, n_train: int, new_params: tuple[str, ...] = ()
) -> Plan:
    """The recipe's plan for this model and dataset size.

    ``new_params``: name prefixes of freshly initialised parameters besides the head (a hybrid's
    fusion, ``model.graft_new_params``); their groups train in head-only phases too.
    """
    plan = build_plan(
        cfg.recipe, len(groups), n_train, cfg.batch_size, cfg.epochs, cfg.head_epochs, cfg.lr,
        cfg.lr_mult, cfg.freeze_upto, cfg.unfreeze, cfg.lr_decay, cfg.bn, cfg.warmup, cfg.optimizer, groups,
        cfg.full_lr,
    )  # fmt: skip
    return with_new_params(plan, groups, new_params)


def with_new_params(plan: Plan, groups: ModelGroups, prefixes: tuple[str, ...]) -> Plan:
    """``plan`` where every head-only phase also trains the groups holding ``prefixes`` parameters.

    Example:
        >>> with_new_params(plan, groups, ("fusion.",))  # doctest: +SKIP
    """
    owner = groups.group_of()
    extra = {g for n, g in owner.items() if any(n.startswith(p) for p in prefixes)}
    if not extra:
        return plan
    for g in sorted(extra):
        mixed = [n for n in groups.params[g] if not any(n.startswith(p) for p in prefixes)]
        if mixed:
            log.warning("group %d holds new and pretrained parameters (e.g. %s); it trains whole "
                        "in head-only phases", g, mixed[0])  # fmt: skip
    phases = tuple(
        dataclasses.replace(p, trainable=tuple(sorted(extra | {groups.head})))
        if tuple(p.trainable) == (groups.head,)
        else p
        for p in plan
    )
    log.info("new parameters %s train with the head in head-only phases", ", ".join(prefixes))
    return dataclasses.replace(plan, phases=phases)


def create_model(
    cfg: FitConfig, num_classes: int, image_size: int | None = None
) -> torch.nn.Module:
    """The model, via :func:`graft.models.create_model` (offline weights, small-init head);
    ``image_size``: the size decided from the data when ``cfg.image_size`` is unset."""
    from graft.models import create_model as _create

    extra = dict(cfg.model_args)
    pretrained: Any = extra.pop("pretrained", True) if cfg.weights != "none" else False
    extra.pop("pretrained", None)
    weights = None if cfg.weights in ("pretrained", "none") else cfg.weights
    if cfg.dropout:
        extra["drop_rate"] = cfg.dropout
    # a hybrid's per-branch mappings ({cnn: true, vit: false}, by kind, name or position) are
    # resolved by graft.hybrid itself; its branches compute at --image-size (graft.hybrid.sizes)
    size = cfg.image_size or image_size
    if "+" in cfg.model and size:
        extra.setdefault("image_size", size)
    model = _create(cfg.model, num_classes=num_classes, pretrained=pretrained, in_chans=cfg.in_chans,
                    head=cfg.head, weights=weights, **extra)  # fmt: skip
    if cfg.peft != "none":  # adapters in place; their frozen base weights never unfreeze
        from graft.models.peft_adapt import add_adapters

        targets = [t.strip() for t in cfg.peft_targets.split(",")] if cfg.peft_targets else None
        add_adapters(model, cfg.peft, cfg.peft_rank, cfg.peft_alpha, targets)
    return model


def _scan(cfg: FitConfig) -> Any:
    from graft.data import scan_dataset

    splits = scan_dataset(cfg.data, val_split=cfg.val_split or None, seed=cfg.seed)
    if splits.skipped and is_rank_zero() and not cfg.dry_run:  # a dry run writes nothing
        splits.write_skipped(Path(cfg.out) / "skipped.tsv")
    log.info("data: %s", splits.summary())
    return splits


def _image_size(cfg: FitConfig, splits: Any) -> int | None:
    """``cfg.image_size``, else the size from the training images against the weights' size
    (graft.data.image_size; a hybrid's largest branch); ``None``: decided from the built model."""
    if cfg.image_size is not None:
        return cfg.image_size
    from graft.data.image_size import auto_size_for
    from graft.models import pretrained_input_size

    pretrained = pretrained_input_size(cfg.model)
    if pretrained is None:
        return None
    return auto_size_for({"input_size": (3, pretrained, pretrained)}, splits.train)


def _data_config(
    cfg: FitConfig, model: torch.nn.Module, splits: Any, size: int | None = None
) -> dict[str, Any]:
    from graft.data import parse_normalization, resolve_data_config

    norm = parse_normalization(cfg.normalization)
    if "branches" in (getattr(model, "pretrained_cfg", None) or {}) and norm != "pretrained":
        raise ConfigError(
            f"normalization {cfg.normalization!r} does not apply to the hybrid {cfg.model}: each "
            "branch normalizes its input inside the model with its own weights' mean/std. Use "
            "--normalization pretrained (or per-branch mean/std via --model-arg branch_inputs=...)."
        )
    stats = None
    if norm == "dataset":  # training images only: val/test pixels must not leak into the model
        from graft.data import normalization_stats

        stats = normalization_stats(splits, progress=False)
    size = cfg.image_size or size
    if size is None:  # from the training images' sizes (graft.data.image_size)
        from graft.data.image_size import auto_size_for

        size = auto_size_for(getattr(model, "pretrained_cfg", None) or {}, splits.train)
    return resolve_data_config(model, size, norm, dataset_stats=stats, in_chans=cfg.in_chans)


def _make_datamodule(
    cfg: FitConfig, splits: Any, data_cfg: dict[str, Any], plan: Plan
) -> FitDataModule:
    return FitDataModule(
        splits, data_cfg, cfg.batch_size, cfg.augment, cfg.flip, cfg.in_chans, cfg.balance,
        cfg.cache_images, cfg.workers, cfg.seed, drop_last=bool(cfg.mixup or cfg.cutmix),
    )  # fmt: skip
