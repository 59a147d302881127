"""``distill``: train a small student from a teacher, with graft fit's recipes, schedules and outputs.

Loss: ``CE(labels) + alpha * KD(logits, T) * T^2 + beta * sum(feature losses)`` (see
:mod:`graft.distill.losses`). The run folder is ``graft fit``'s (config.yaml, checkpoints/,
metrics.csv, metrics.json, bundle/) plus ``distill.json`` (the distillation options, the layer pairs
and adapters, and the teacher/student report). ``bundle/`` holds the student only: a normal
classifier bundle for ``graft evaluate``, ``predict`` and ``export``.

Example:
    >>> r = distill("data/animals", teacher="runs/lite2/bundle", student="tv:mobilenet_v2",
    ...             epochs=5, image_size=96, out="runs/kd")  # doctest: +SKIP
    >>> print(r.report)  # doctest: +SKIP
    teacher tf_efficientnet_lite2: acc 0.931, ... | student tv:mobilenet_v2: acc 0.915, ...
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from graft.distill.config import DistillConfig, split_options
from graft.distill.distiller import Distiller
from graft.distill.load import TeacherSource, load_teacher
from graft.distill.module import DistillModule
from graft.distill.report import ModelStats, accuracy, count_params, cpu_latency_ms, report_line
from graft.distill.taps import parse_pairs
from graft.distill.teacher import Teacher
from graft.errors import ConfigError, GraftError
from graft.io import write_json
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.groups import ModelGroups

log = get_logger("graft.distill")


def _fit_steps() -> Any:
    """graft fit's module, whose steps distill reuses one by one (``graft.train.fitting``)."""
    try:
        return importlib.import_module("graft.train.fitting")
    except ModuleNotFoundError:  # older layout
        return importlib.import_module("graft.train.fit")


_fit = _fit_steps()
DEFAULT_OUT = "runs/distill"


@dataclass
class DistillResult:
    """What :func:`distill` produced: the run folder, the student bundle, metrics and the report."""

    run_dir: Path
    bundle: Path
    metrics: dict[str, float]
    teacher: ModelStats
    student: ModelStats
    report: str
    history: list[dict[str, Any]] = field(default_factory=list)
    config: FitConfig | None = None
    distill_config: DistillConfig | None = None


def distill(
    data: str | None = None,
    *,
    teacher: str | os.PathLike | nn.Module | None = None,
    student: str | None = None,
    config: FitConfig | None = None,
    distill_config: DistillConfig | None = None,
    callbacks: list[pl.Callback] | None = None,
    **options: Any,
) -> DistillResult:
    """Distill ``teacher`` (bundle folder or model name) into ``student`` (a model name) on ``data``.

    Distillation options: ``alpha``, ``temperature``, ``beta``, ``feature_pairs`` (``"auto"``,
    ``"none"`` or ``"student_layer:teacher_layer,..."``), ``feature_loss`` (``mse``, ``cosine``,
    ``at``), ``spatial``, ``feature_norm``, ``teacher_image_size``, ``cache_teacher`` (see
    :class:`DistillConfig`). Every other keyword is a ``graft fit`` option (:class:`FitConfig`):
    ``recipe``, ``epochs``, ``lr``, ``image_size``, ``augment``, ``out``...

    Example:
        >>> r = distill("data/pets", teacher="runs/big/bundle", student="efficientnet_lite0",
        ...             feature_loss="at", recipe="full", epochs=4, out="runs/kd")  # doctest: +SKIP
        >>> r.metrics["test_acc"], r.teacher.accuracy  # doctest: +SKIP
        (0.91, 0.93)
    """
    d_opts, fit_opts = split_options(options)
    dcfg = DistillConfig.from_dict(
        {**(distill_config.to_dict() if distill_config else {}), **d_opts}
    )
    if teacher is not None and not isinstance(teacher, nn.Module):
        dcfg.teacher = os.fspath(teacher)
    if teacher is None and dcfg.teacher is None:
        raise ConfigError(
            "distill needs a teacher: a bundle folder written by `graft fit` or a model name."
        )
    if student is not None:
        fit_opts["model"] = student
    fit_opts.setdefault("out", config.out if config is not None else DEFAULT_OUT)
    fit_opts["cache_frozen"] = False  # the student's backbone must run: its features are distilled
    cfg = _fit.resolve_config(data, config, fit_opts)
    return _run(cfg, dcfg, teacher if isinstance(teacher, nn.Module) else dcfg.teacher, callbacks)


def _run(
    cfg: FitConfig, dcfg: DistillConfig, teacher_source: Any, callbacks: list[pl.Callback] | None
) -> DistillResult:
    _fit._tune_allocator()
    run = _fit.prepare_run_dir(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    splits = _fit._scan(cfg)
    student = _fit.create_model(cfg, splits.num_classes)
    if cfg.channels_last:
        student = student.to(memory_format=torch.channels_last)
    data_cfg = _fit._data_config(cfg, student, splits)
    source = load_teacher(teacher_source)
    alpha = _alpha(dcfg, source, splits.classes)
    pairs = parse_pairs(dcfg.feature_pairs) if dcfg.beta > 0 else []
    if not alpha and not pairs:
        raise ConfigError(
            "nothing to distill: logit KD is off (alpha=0 or the teacher does not know the task's classes) "
            "and there are no feature pairs (beta=0 or feature_pairs='none'). Set feature_pairs='auto' "
            "with beta > 0, or use a teacher bundle fine-tuned on the same classes."
        )
    groups = ModelGroups.of(student)
    plan = _fit.make_plan(cfg, groups, len(splits.train))
    dm = _fit._make_datamodule(cfg, splits, data_cfg, plan)
    cache = _use_cache(dcfg, cfg)
    t = Teacher(
        source.model,
        source.data_config,
        data_cfg,
        [t for _, t in pairs],
        dcfg.teacher_image_size,
        cache,
    )
    distiller = Distiller(
        student,
        t,
        pairs,
        _sample_batch(dm),
        dcfg.feature_loss,
        dcfg.temperature,
        bool(alpha),
        dcfg.spatial,
        dcfg.feature_norm,
    )
    module = DistillModule(
        distiller, splits.num_classes, alpha, dcfg.beta, **_module_options(cfg, splits)
    )
    trainer, checkpoints = _make_trainer(cfg, run, plan, callbacks, dm)
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=_fit._resume_path(cfg, run), weights_only=True)
    if trainer.interrupted:
        raise GraftError(
            f"distillation was interrupted; resume with `graft distill --resume --out {run}`."
        )
    seconds = time.perf_counter() - started
    distiller.close()
    _fit._load_best(module, checkpoints, cfg)
    metrics = _fit._final_metrics(trainer, module, dm, seconds, len(splits.train), plan)
    same = source.classes is not None and list(source.classes) == list(splits.classes)
    t_stats, s_stats = _stats(
        dcfg, source, t, module.eval_model(), data_cfg, dm, metrics, same, cfg
    )
    metrics.update(_report_metrics(t_stats, s_stats, t))
    history = _fit.write_history(run, plan)
    bundle = _fit.save_trained_bundle(
        run / "bundle", module.eval_model(), splits.classes, data_cfg, cfg, plan, metrics
    )
    report = report_line(t_stats, s_stats)
    write_json(
        run / "distill.json",
        _summary(dcfg, source, alpha, pairs, distiller, t_stats, s_stats, report),
    )
    write_json(
        run / "metrics.json", {"metrics": metrics, "unfreezing": trainer.callbacks[0].events}
    )
    log.info("distill finished: %s", report)
    return DistillResult(run, bundle, metrics, t_stats, s_stats, report, history, cfg, dcfg)


def _make_trainer(
    cfg: FitConfig, run: Path, plan: Any, callbacks: Any, dm: Any
) -> tuple[pl.Trainer, Any]:
    """graft fit's trainer (the step count per epoch is passed where its version takes it)."""
    if "steps_per_epoch" in inspect.signature(_fit.make_trainer).parameters:
        steps = max(1, len(dm.train_set) // cfg.batch_size)
        return _fit.make_trainer(cfg, run, plan, callbacks, steps_per_epoch=steps)
    return _fit.make_trainer(cfg, run, plan, callbacks)


# ------------------------------------------------------------------------------------ choices


def _alpha(dcfg: DistillConfig, source: TeacherSource, classes: list[str]) -> float:
    """The KD weight: the user's, or 1.0 when the teacher was trained on exactly these classes."""
    same = source.classes is not None and list(source.classes) == list(classes)
    if dcfg.alpha is None:
        if not same:
            log.warning(
                "teacher %s does not predict this task's classes (%s); logit KD off, features only",
                source.name,
                "a pretrained head"
                if source.classes is None
                else f"{len(source.classes)} other classes",
            )
        return 1.0 if same else 0.0
    if dcfg.alpha > 0 and not same:
        got = "unknown (not a bundle)" if source.classes is None else source.classes[:10]
        raise ConfigError(
            f"logit KD (alpha={dcfg.alpha}) needs a teacher trained on the same classes in the same order: "
            f"data has {classes[:10]}, teacher has {got}. Fine-tune the teacher with `graft fit` on this "
            "data first, or set alpha=0 to distill features only."
        )
    return float(dcfg.alpha)


def _use_cache(dcfg: DistillConfig, cfg: FitConfig) -> bool:
    """Cache teacher outputs when the same inputs recur every epoch (no random crops, no mixing).

    A horizontal flip still allows it: the cache is keyed by input content, so each flipped view is
    cached as its own entry (at most two per image).
    """
    repeatable = cfg.augment == "none" and not cfg.mixup and not cfg.cutmix
    if dcfg.cache_teacher is None:
        return repeatable
    if dcfg.cache_teacher and not repeatable:
        log.warning(
            "cache_teacher with random augmentation or mixing: most lookups will miss and memory grows"
        )
    return bool(dcfg.cache_teacher)


def _sample_batch(dm: Any) -> torch.Tensor:
    """Two unaugmented training images: the dry run that discovers feature shapes."""
    ds = dm.plain_train_set
    items = [ds[i] for i in range(min(len(ds), 8))]
    xs = [item[0] for item in items if item is not None][:2]
    if not xs:
        raise ConfigError(
            "could not read any of the first training images for the dry run; check the data."
        )
    return torch.stack(xs)


def _module_options(cfg: FitConfig, splits: Any) -> dict[str, Any]:
    weights = None
    if cfg.balance == "weights":
        from graft.data import class_weights

        weights = class_weights([y for _, y in splits.train], splits.num_classes)
    return {
        "optimizer": cfg.optimizer,
        "weight_decay": cfg.weight_decay,
        "momentum": cfg.momentum,
        "label_smoothing": cfg.label_smoothing,
        "mixup": cfg.mixup,
        "cutmix": cfg.cutmix,
        "ema_decay": cfg.ema_decay if cfg.ema else None,
        "class_weights": weights,
        "channels_last": cfg.channels_last,
    }


# ------------------------------------------------------------------------------------- report


def _stats(
    dcfg: DistillConfig,
    source: TeacherSource,
    teacher: Teacher,
    student: nn.Module,
    data_cfg: dict,
    dm: Any,
    metrics: dict,
    same: bool,
    cfg: FitConfig,
) -> tuple[ModelStats, ModelStats]:
    """Teacher and student: accuracy on the test split (else validation), parameters, latency.

    The teacher is evaluated with its own preprocessing (as ``graft evaluate`` would run its bundle).
    """
    split = dm.splits.test if dm.test_set is not None else dm.splits.val
    s_acc = metrics.get("test_acc" if dm.test_set is not None else "val_acc")
    teacher.to("cpu")
    t_acc = _teacher_accuracy(teacher, source, split, cfg) if split and same else None
    t_size = (
        teacher.input.channels,
        *(teacher.input.size or source.data_config["input_size"][-2:]),
    )
    student = student.cpu()
    t_ms = cpu_latency_ms(teacher.model, t_size) if dcfg.latency else float("nan")
    s_ms = cpu_latency_ms(student, tuple(data_cfg["input_size"])) if dcfg.latency else float("nan")
    return (
        ModelStats(source.name, count_params(teacher.model), t_ms, t_acc),
        ModelStats(
            getattr(student, "graft_spec", {}).get("name", "student"),
            count_params(student),
            s_ms,
            s_acc,
        ),
    )


def _teacher_accuracy(
    teacher: Teacher, source: TeacherSource, samples: list, cfg: FitConfig
) -> float:
    from torch.utils.data import DataLoader

    from graft.data import ImageDataset, build_transforms, collate_skip

    t_cfg = dict(source.data_config)
    if teacher.input.size:
        t_cfg["input_size"] = (teacher.input.channels, *teacher.input.size)
    in_chans = teacher.input.channels
    ds = ImageDataset(
        samples, build_transforms(t_cfg, train=False, in_chans=in_chans), in_chans=in_chans
    )
    return accuracy(
        teacher.model, DataLoader(ds, batch_size=cfg.batch_size, collate_fn=collate_skip)
    )


def _report_metrics(t: ModelStats, s: ModelStats, teacher: Teacher) -> dict[str, float]:
    out = {
        "teacher_params": float(t.params),
        "student_params": float(s.params),
        "teacher_latency_ms": round(t.latency_ms, 3),
        "student_latency_ms": round(s.latency_ms, 3),
    }
    if t.accuracy is not None:
        out["teacher_acc"] = round(t.accuracy, 6)
    if teacher.cache is not None:
        out["teacher_cache_hits"] = float(teacher.cache.hits)
        out["teacher_cache_misses"] = float(teacher.cache.misses)
    return out


def _summary(dcfg, source, alpha, pairs, distiller, t_stats, s_stats, report) -> dict[str, Any]:
    return {
        "options": dcfg.to_dict(),
        "teacher": {"source": source.kind, "name": source.name, "data_config": source.data_config},
        "alpha": alpha,
        "pairs": [
            {"student": s, "teacher": t, "adapter": repr(a).replace("\n", " ")}
            for (s, t), a in zip(pairs, distiller.adapters, strict=True)
        ],
        "teacher_stats": vars(t_stats),
        "student_stats": vars(s_stats),
        "report": report,
    }
