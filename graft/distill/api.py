"""``distill``: train a small student from a teacher, with graft fit's recipes, schedules and outputs.

Loss: ``CE(labels) + alpha * KD(logits, T) * T^2 + beta * sum(feature losses)`` (see
:mod:`graft.distill.losses`). The run folder is ``graft fit``'s (config.yaml, checkpoints/,
metrics.csv, metrics.json, bundle/) plus ``distill.json`` (the distillation options, the layer pairs
and adapters, and the teacher/student report). ``bundle/`` holds the student only: a normal
classifier bundle for ``graft evaluate``, ``predict`` and ``export``.

Example:
    >>> r = distill_model("data/animals", teacher="runs/lite2/bundle", student="tv:mobilenet_v2",
    ...             epochs=5, image_size=96, out="runs/kd")  # doctest: +SKIP
    >>> print(r.report)  # doctest: +SKIP
    teacher tf_efficientnet_lite2: acc 0.931, ... | student tv:mobilenet_v2: acc 0.915, ...
"""

from __future__ import annotations

import dataclasses
import os
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
from graft.errors import ConfigError
from graft.io import write_json
from graft.log import get_logger
from graft.train.config import FitConfig
from graft.train.fitting import fit
from graft.train.parts import FitParts, module_options

log = get_logger("graft.distill")

DEFAULT_OUT = "runs/distill"
# graft fit clips the gradient norm at 1. The KD term's logit gradient is up to T times CE's, so the
# clip throttled every distillation step: on the bench (5 seeds, paired) logit KD went from -0.6
# points against no KD with the clip (both students clipped) to +0.7 without it (neither clipped).
# Distill turns it off unless the caller sets grad_clip.
NO_GRAD_CLIP = 0.0


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


def distill_model(
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
    ``recipe``, ``epochs``, ``lr``, ``image_size``, ``augment``, ``out``... The run is
    :func:`graft.train.fit` itself with a distillation module (its ``module_factory`` hook).

    Example:
        >>> r = distill_model("data/pets", teacher="runs/big/bundle", student="efficientnet_lite0",
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
    student = student if student is not None else dcfg.student
    if student is not None:
        fit_opts["model"] = student
    dcfg.student = fit_opts.get("model", config.model if config is not None else None)
    if config is None and "grad_clip" not in fit_opts:
        fit_opts["grad_clip"] = NO_GRAD_CLIP
    fit_opts.setdefault("out", config.out if config is not None else DEFAULT_OUT)
    asked = fit_opts.get("cache_frozen", config.cache_frozen if config is not None else None)
    fit_opts["cache_frozen"] = _cache_frozen(dcfg, asked)
    if config is not None and fit_opts["cache_frozen"] is None:  # None would keep config's value
        config = dataclasses.replace(config, cache_frozen=None)
    job = _Job(dcfg, load_teacher(teacher if isinstance(teacher, nn.Module) else dcfg.teacher))
    result = fit(
        data,
        config=config,
        callbacks=callbacks,
        module_factory=job.build_module,
        on_trained=job.finish,
        **fit_opts,
    )
    return DistillResult(
        result.run_dir, result.bundle, result.metrics, job.t_stats, job.s_stats, job.report,
        result.history, result.config, dcfg,
    )  # fmt: skip


class _Job:
    """The two hooks distill gives :func:`graft.train.fit`: build the module, then report."""

    def __init__(self, dcfg: DistillConfig, source: TeacherSource) -> None:
        self.dcfg, self.source = dcfg, source
        self.alpha = 0.0
        self.pairs: list[tuple[str, str]] = []
        self.distiller: Distiller | None = None
        self.t_stats = self.s_stats = ModelStats("", 0, float("nan"), None)
        self.report = ""

    def build_module(self, parts: FitParts) -> DistillModule:
        """The student (``parts.model``), its adapters and the teacher in one DistillModule.

        With logit KD only, graft fit's pooled-feature cache may serve head-only epochs: the
        module attaches the teacher's logits to it (see :func:`_cache_frozen`).
        """
        dcfg, cfg, splits = self.dcfg, parts.cfg, parts.splits
        self.alpha = _alpha(dcfg, self.source, splits.classes)
        self.pairs = parse_pairs(dcfg.feature_pairs) if dcfg.beta > 0 else []
        if not self.alpha and not self.pairs:
            raise ConfigError(
                "nothing to distill: logit KD is off (alpha=0 or the teacher does not know the task's classes) "
                "and there are no feature pairs (beta=0 or feature_pairs='none'). Set feature_pairs='auto' "
                "with beta > 0, or use a teacher bundle fine-tuned on the same classes."
            )
        options = module_options(parts)  # first: it may put the student in channels-last
        teacher = Teacher(
            self.source.model, self.source.data_config, parts.data_config,
            [t for _, t in self.pairs], dcfg.teacher_image_size, _use_cache(dcfg, cfg),
        )  # fmt: skip
        self.distiller = Distiller(
            parts.model, teacher, self.pairs, _sample_batch(parts.datamodule), dcfg.feature_loss,
            dcfg.temperature, bool(self.alpha), dcfg.spatial, dcfg.feature_norm,
        )  # fmt: skip
        return DistillModule(self.distiller, splits.num_classes, self.alpha, dcfg.beta, **options)

    def finish(
        self, parts: FitParts, module: DistillModule, metrics: dict[str, float]
    ) -> dict[str, float]:
        """After training: remove hooks, measure teacher and student, write ``distill.json``."""
        distiller = module.distiller
        distiller.close()
        same = self.source.classes is not None and list(self.source.classes) == list(
            parts.splits.classes
        )
        measure = parts.is_global_zero  # accuracy and latency once, on the writing rank
        self.t_stats, self.s_stats = _stats(
            self.dcfg, self.source, distiller.teacher, module.eval_model(), parts, metrics,
            same and measure, measure,
        )  # fmt: skip
        self.report = report_line(self.t_stats, self.s_stats)
        if measure:
            summary = _summary(
                self.dcfg, self.source, self.alpha, self.pairs, distiller, self.t_stats,
                self.s_stats, self.report,
            )  # fmt: skip
            write_json(parts.run / "distill.json", summary)
            log.info("distill finished: %s", self.report)
        return _report_metrics(self.t_stats, self.s_stats, distiller.teacher)


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


def _cache_frozen(dcfg: DistillConfig, asked: bool | None) -> bool | None:
    """graft fit's ``cache_frozen`` for a distillation run.

    Logit KD only: fit's default (``None``: pooled features cached during head-only epochs of
    ``auto``/``head``; :class:`DistillModule` serves the teacher's logits with them). With feature
    pairs: off. Their taps read the student's maps inside the frozen backbone, which the cache
    skips; uncached, the head-only epochs also train the adapters on those maps, and caching
    both models' maps per image would cost far more memory than pooled features. The prefix
    cache of ``freeze-upto``/``progressive`` (``cache_frozen=True``) stays off for the same reason.

    Example:
        >>> _cache_frozen(DistillConfig(feature_pairs="none"), None) is None
        True
        >>> _cache_frozen(DistillConfig(feature_pairs="auto"), None)
        False
    """
    features = dcfg.beta > 0 and bool(parse_pairs(dcfg.feature_pairs))
    if features or asked is False:
        if asked:
            log.warning("cache_frozen: off under feature distillation (the taps need the maps)")
        return False
    if asked:
        log.info(
            "cache_frozen: only the pooled-feature cache of head-only epochs applies to distill"
        )
    return None


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


# ------------------------------------------------------------------------------------- report


def _stats(
    dcfg: DistillConfig,
    source: TeacherSource,
    teacher: Teacher,
    student: nn.Module,
    parts: FitParts,
    metrics: dict,
    teacher_acc: bool,
    latency: bool,
) -> tuple[ModelStats, ModelStats]:
    """Teacher and student: accuracy on the test split (else validation), parameters, latency.

    The teacher is evaluated with its own preprocessing (as ``graft evaluate`` would run its bundle).
    """
    dm = parts.datamodule
    split = dm.splits.test if dm.test_set is not None else dm.splits.val
    s_acc = metrics.get("test_acc" if dm.test_set is not None else "val_acc")
    teacher.to("cpu")
    t_acc = _teacher_accuracy(teacher, source, split, parts.cfg) if split and teacher_acc else None
    t_size = (
        teacher.input.channels,
        *(teacher.input.size or source.data_config["input_size"][-2:]),
    )
    student = student.cpu()
    timed = latency and dcfg.latency
    t_ms = cpu_latency_ms(teacher.model, t_size) if timed else float("nan")
    s_size = tuple(parts.data_config["input_size"])
    s_ms = cpu_latency_ms(student, s_size) if timed else float("nan")
    name = getattr(student, "graft_spec", {}).get("name", "student")
    return (
        ModelStats(source.name, count_params(teacher.model), t_ms, t_acc),
        ModelStats(name, count_params(student), s_ms, s_acc),
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


# its name before graft.distill became only a package (kept for one release)
distill = distill_model
