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

Example:
    >>> result = fit("data/pets", model="efficientnet_lite0", epochs=5, out="runs/pets")  # doctest: +SKIP
    >>> result.metrics["test_acc"]  # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from graft.distributed import is_rank_zero
from graft.errors import ConfigError, GraftError
from graft.io import write_json
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.datamodule import FitDataModule
from graft.train.frozen_cache import cache_head_inputs, can_cache, head_suffix
from graft.train.groups import ModelGroups
from graft.train.improve import improve_weights, metric_values, tta_metrics, wants_snapshots
from graft.train.loggers import log_config, log_final
from graft.train.module import GraftModule
from graft.train.outputs import save_trained_bundle, write_history
from graft.train.plan import announce
from graft.train.recipes import Plan, build_plan
from graft.train.resume_check import (
    RunIdentity,
    check_resume_identity,
    check_resume_options,
    run_identity,
)
from graft.train.run_guard import claim_run
from graft.train.snapshots import WeightSnapshots, remove_snapshots
from graft.train.trainer import make_trainer

log = get_logger("graft.train")
SNAPSHOTS = "checkpoints/weights"  # kept weights for WiSE-FT / --average (graft.train.snapshots)


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
    saved = check_resume_checkpoint(run / "checkpoints" / "last.ckpt", run) if cfg.resume else {}
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = prepare_fit(cfg, run)
    identity = run_identity(
        cfg.data, cfg.model, parts.data_config, parts.splits.classes, cfg.recipe
    )
    check_resume_identity(saved, identity, cfg.resume_force)
    module = (module_factory or default_module)(parts)
    dm, plan = parts.datamodule, parts.plan
    _setup_cache(cfg, module, dm, plan, parts.groups)
    sized = cfg.image_size is None
    cfg = parts.cfg = _resolved(cfg, parts, run)
    progress = announce(cfg, parts, dm.cached_epochs, time.perf_counter() - begun, sized)
    callbacks = [*(callbacks or []), *([progress] if progress else [])]
    keep_lp, keep_epochs = wants_snapshots(cfg)
    if keep_lp or keep_epochs:
        callbacks.append(WeightSnapshots(run / SNAPSHOTS, plan, keep_lp, keep_epochs))
    counts = footprint_start(cfg, parts)
    trainer, checkpoints = make_trainer(
        cfg, run, plan, [*callbacks, RunIdentity(identity)],
        steps_per_epoch=len(dm.train_set) // cfg.batch_size,
    )  # fmt: skip
    parts.trainer = trainer
    log_config(trainer, cfg.to_dict())
    started = time.perf_counter()
    _train(trainer, module, dm, cfg, run)
    if trainer.interrupted:
        command = getattr(module, "command", "graft fit")
        raise GraftError(f"training was interrupted; resume with `{command} --resume --out {run}`.")
    seconds = time.perf_counter() - started
    history = write_history(run, plan) if trainer.is_global_zero else []
    _load_best(module, checkpoints, cfg)
    improved = improve_weights(parts, module, run / SNAPSHOTS) if keep_lp or keep_epochs else {}
    metrics = _final_metrics(trainer, module, dm, seconds, len(parts.splits.train), plan)
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
        model = _to_save(module.eval_model(), cfg)
        bundle = save_trained_bundle(
            bundle, model, parts.splits.classes, parts.data_config, cfg, plan, metrics
        )
        if cfg.peft_save_adapter:  # next to the merged weights, once the bundle exists
            save_adapter(module.eval_model(), bundle / "adapter.safetensors")
        write_json(run / "metrics.json", {"metrics": metrics, "unfreezing": events,
                                          **({"weights": improved} if improved else {})})  # fmt: skip
        remove_snapshots(run / SNAPSHOTS)
        if cfg.report:
            _write_report(run)
    trainer.strategy.barrier("graft-fit-outputs")
    log.info("fit finished: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return FitResult(run, bundle, metrics, history, cfg, events)


def footprint_start(cfg: FitConfig, parts: FitParts) -> dict[str, float]:
    """Count what will train, print it (rank 0, with progress on) and start the peak-memory meter."""
    from graft.train.footprint import describe, reset_peak_memory, trainable_params

    counts = trainable_params(parts.model, parts.groups, parts.plan)
    reset_peak_memory()
    if cfg.progress and is_rank_zero():
        from graft.train.plan import say

        say(describe(counts))
    return counts


def footprint_end(cfg: FitConfig, parts: FitParts, counts: dict[str, float]) -> dict[str, float]:
    """``counts`` + peak memory (+ the adapters' size with ``--peft``), printed and returned."""
    from graft.train.footprint import describe, peak_memory_mb

    memory = peak_memory_mb()
    if cfg.progress and is_rank_zero():
        from graft.train.plan import say

        say(describe(counts, memory))
    info = getattr(parts.model, "graft_peft", None)
    extra = {"peft_adapter_params": float(info.adapter_params)} if info is not None else {}
    return {**counts, **memory, **extra}


def _to_save(model: torch.nn.Module, cfg: FitConfig) -> torch.nn.Module:
    """The weights a bundle holds: with ``--peft``, adapters merged (no peft needed to load)."""
    if cfg.peft == "none":
        return model
    from graft.models.peft_adapt import merged_copy

    return merged_copy(model)


def save_adapter(model: torch.nn.Module, path: Path) -> Path:
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


def _dry_run(cfg: FitConfig, begun: float) -> FitResult:
    """``dry_run=True``: the plan and its estimate, nothing trained or written."""
    from graft.train.plan import dry_run

    resolved, text, seconds = dry_run(cfg, begun)
    run = Path(cfg.out)
    return FitResult(run, run / "bundle", {"estimated_seconds": round(seconds, 1)},
                     config=resolved, plan_text=text)  # fmt: skip


def _resolved(cfg: FitConfig, parts: FitParts, run: Path) -> FitConfig:
    """The config with auto's choices filled in, saved as ``run/config.yaml`` (rank 0)."""
    from graft.train.resolved import resolve_choices

    resolved = resolve_choices(cfg, parts, cached=bool(parts.datamodule.cached_epochs))
    if is_rank_zero():
        resolved.save(run / "config.yaml")
    return resolved


def _write_report(run: Path) -> None:
    """The run's HTML report (rank 0, every run file written); a failure is a warning, not an error."""
    from graft.train.reporters import write_run_report  # graft.report installs it

    path = write_run_report(run)
    if path is not None:
        log.info("report: %s", path)


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


# ------------------------------------------------------------------------------------- config


def resolve_config(
    data: str | None, config: FitConfig | None, options: dict[str, Any]
) -> FitConfig:
    """The effective config: ``config`` (or defaults), then ``options``; on resume, the saved one."""
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


def prepare_run_dir(cfg: FitConfig) -> Path:
    """Create the run folder and write ``config.yaml``; refuse to overwrite a run unless resuming."""
    run = Path(cfg.out)
    last = run / "checkpoints" / "last.ckpt"
    if cfg.resume and not last.is_file():
        raise ConfigError(f"--resume: {last} does not exist; nothing to resume in {run}.")
    if not cfg.resume and (last.is_file() or (run / "bundle").exists()):
        raise ConfigError(
            f"{run} already holds a run; pass --resume to continue it or choose another --out folder."
        )
    run.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        cfg.save(run / "config.yaml")
    return run


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


# ---------------------------------------------------------------------------------- building


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


def _setup_cache(
    cfg: FitConfig, module: GraftModule, dm: FitDataModule, plan: Plan, groups: ModelGroups
) -> None:
    """Serve cached outputs of frozen layers while they stay frozen (default: on for auto and head).

    Head-only phases cache the pooled features (:mod:`graft.train.frozen_cache`); with
    ``cache_frozen=True``, the first phase that keeps a prefix of groups frozen (freeze-upto,
    progressive) caches that prefix through :func:`graft.features.prefix_cache.split_frozen_prefix`.
    Cached epochs train on unaugmented images.
    """
    wanted = cfg.cache_frozen if cfg.cache_frozen is not None else cfg.recipe in ("auto", "head")
    if not wanted or cfg.balance == "sampler" or cfg.mixup or cfg.cutmix:
        return
    started = time.perf_counter()
    head_epochs = [e for p in plan for e in range(p.start, p.end) if can_cache(p, groups)]
    suffix = head_suffix(module.model, groups) if head_epochs else None
    if not head_epochs and getattr(module.model, "graft_new_params", ()):
        log.info("no pooled-feature cache: head-only epochs also train %s",
                 ", ".join(module.model.graft_new_params))  # fmt: skip
    if suffix is not None:
        loader = dm.eval_loader(dm.plain_train_set)
        dm.cached_train = cache_head_inputs(module.model, loader, cfg.channels_last)
        epochs = range(min(head_epochs), max(head_epochs) + 1)
    elif cfg.cache_frozen:
        found = _prefix_cache(module, dm, plan)
        if found is None:
            log.warning(
                "--cache-frozen: no phase keeps a cacheable frozen prefix; training uncached"
            )
            return
        suffix, epochs = found
    else:
        return
    dm.cached_epochs = module.cached_epochs = epochs
    module.cached_suffix = suffix
    log.info(
        "cached frozen outputs of %d images in %.1f s",
        len(dm.cached_train),
        time.perf_counter() - started,
    )


def _prefix_cache(
    module: GraftModule, dm: FitDataModule, plan: Plan
) -> tuple[torch.nn.Module, range] | None:
    from graft.features.prefix_cache import cache_prefix_outputs, split_frozen_prefix
    from graft.models import apply_bn_policy

    phase = next((p for p in plan if 0 not in p.trainable and p.bn != "train"), None)
    if phase is None:
        return None
    module.enter_phase(phase)
    apply_bn_policy(module.model, "frozen")  # hooks that keep frozen BatchNorm in eval mode
    split = split_frozen_prefix(module.model)
    if split is None:
        return None
    dm.cached_train = cache_prefix_outputs(split.prefix, dm.eval_loader(dm.plain_train_set))
    return split.suffix, range(phase.start, phase.end)


def _train(
    trainer: pl.Trainer, module: GraftModule, dm: FitDataModule, cfg: FitConfig, run: Path
) -> None:
    """``trainer.fit``, with out-of-memory errors turned into advice."""
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=_resume_path(cfg, run), weights_only=True)
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
    last = run / "checkpoints" / "last.ckpt"
    resume = (
        f"; finished epochs are kept: add --resume --out {run} to continue"
        if last.is_file()
        else f"; no epoch had finished, so start again (the --out folder {run} can be reused)"
    )
    return (
        f"out of memory while training (batch size {cfg.batch_size}): {first}. Try "
        + ", ".join(t for t in tips if t)
        + resume
        + "."
    )


def check_resume_checkpoint(path: Path, run: Path) -> dict[str, Any]:
    """The resume checkpoint's content; refuse one that is not plain tensors (a pickle, a foreign file).

    Lightning would fail on it too, but with an unpickling traceback; nothing is ever executed.

    Example:
        >>> check_resume_checkpoint(Path("runs/x/checkpoints/last.ckpt"), Path("runs/x"))  # doctest: +SKIP
    """
    from graft.errors import UnsafeFileError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (not a zip), EOFError, ...
        from graft.models.weights import load_error_reason

        reason = load_error_reason(err)
        raise UnsafeFileError(
            f"--resume: {path} cannot be read as a plain-tensor checkpoint ({reason}); it may be "
            f"damaged or not graft's. Nothing in it was executed. Restore it from a backup, or "
            f"start a new run with another --out folder (or without --resume)."
        ) from err
    if not isinstance(state, dict) or "state_dict" not in state:
        raise UnsafeFileError(
            f"--resume: {path} is not a graft/Lightning checkpoint (no 'state_dict'); it may be "
            "damaged or not graft's. Restore it, or start a new run with another --out folder."
        )
    return state


def _resume_path(cfg: FitConfig, run: Path) -> str | None:
    return str(run / "checkpoints" / "last.ckpt") if cfg.resume else None


def _tune_allocator() -> None:
    try:
        from graft.runtime import tune_allocator
    except ImportError:
        return
    tune_allocator()


# ----------------------------------------------------------------------------------- results


def _load_best(module: GraftModule, checkpoints: Any, cfg: FitConfig) -> None:
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


def _final_metrics(
    trainer: pl.Trainer,
    module: GraftModule,
    dm: FitDataModule,
    seconds: float,
    n_train: int,
    plan: Plan,
) -> dict[str, float]:
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
