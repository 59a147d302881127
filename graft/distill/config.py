"""``DistillConfig``: the options ``graft distill`` adds on top of ``graft fit``'s :class:`FitConfig`.

Example:
    >>> cfg = DistillConfig(teacher="runs/teacher/bundle", temperature=2.0)
    >>> cfg.feature_loss, cfg.feature_pairs
    ('mse', 'auto')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from graft import config as _config
from graft.errors import ConfigError
from graft.options import option


@dataclass
class DistillConfig:
    """Distillation options; every ``graft fit`` option (recipe, schedule, outputs...) applies too."""

    teacher: str | None = option(
        None,
        "teacher: a bundle folder fine-tuned on the task, or a pretrained model name",
        default_text="required",
    )
    student: str | None = option(
        None,
        "student model name, e.g. tv:mobilenet_v2 or efficientnet_lite0",
        default_text="efficientnet_lite0, as graft fit's --model",
    )
    alpha: float | None = option(
        None,
        "weight of logit KD",
        default_text="1.0 when the teacher knows the classes, else 0",
    )
    temperature: float = option(4.0, "KD temperature T (the KD term is scaled by T^2; 1-8)")
    beta: float = option(1.0, "weight of the sum of feature losses (0: logits only)")
    feature_pairs: str = option(
        "auto", "auto (forward_features of each), none, or 's_layer:t_layer,...'"
    )
    feature_loss: Literal["mse", "cosine", "at"] = option(
        "mse", "feature loss: mse, cosine, or at (attention transfer)"
    )
    spatial: Literal["interpolate", "pool"] = option(
        "interpolate", "how student feature maps meet the teacher's grid"
    )
    feature_norm: bool = option(False, "standardise features over channels before the loss")
    teacher_image_size: int | None = option(
        None, "teacher input size in pixels", default_text="the teacher's own"
    )
    cache_teacher: bool | None = option(
        None,
        "compute teacher outputs once",
        default_text="on when training inputs are not randomly augmented",
    )
    latency: bool = option(
        True, "measure batch-1 CPU latency of teacher and student for the report"
    )

    def __post_init__(self) -> None:
        if self.alpha is not None and self.alpha < 0:
            raise ConfigError(f"alpha must be >= 0, got {self.alpha}")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        if self.temperature <= 0:
            raise ConfigError(
                f"temperature must be > 0, got {self.temperature}; typical values are 1-8."
            )
        if self.teacher_image_size is not None and self.teacher_image_size < 8:
            raise ConfigError(
                f"teacher_image_size must be at least 8 pixels, got {self.teacher_image_size}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "options") -> DistillConfig:
        """Build from a mapping; unknown keys raise :class:`graft.errors.ConfigError`."""
        return _config.from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        return _config.to_dict(self)


def field_names() -> list[str]:
    """Names of the distillation options."""
    return [f.name for f in dataclasses.fields(DistillConfig)]


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(distill options, fit options)`` from one mapping of keyword arguments."""
    names = set(field_names())
    distill = {k: v for k, v in options.items() if k in names}
    fit = {k: v for k, v in options.items() if k not in names}
    return distill, fit
