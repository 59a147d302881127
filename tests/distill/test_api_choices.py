"""distill()'s automatic choices: KD weight from the teacher's classes, when to cache the teacher."""

from __future__ import annotations

import pytest
import torch

from graft.distill.api import _alpha, _use_cache
from graft.distill.config import DistillConfig, split_options
from graft.distill.load import TeacherSource
from graft.errors import ConfigError
from graft.train.config import FitConfig

CLASSES = ["cat", "dog"]


def _source(classes):
    return TeacherSource(
        torch.nn.Identity(), {}, classes, "t", "bundle" if classes else "pretrained"
    )


def test_alpha_defaults_follow_the_teachers_classes() -> None:
    assert _alpha(DistillConfig(), _source(CLASSES), CLASSES) == 1.0
    assert _alpha(DistillConfig(), _source(None), CLASSES) == 0.0  # pretrained head: features only
    assert (
        _alpha(DistillConfig(), _source(["dog", "cat"]), CLASSES) == 0.0
    )  # other order: not the same head
    assert _alpha(DistillConfig(alpha=0.3), _source(CLASSES), CLASSES) == 0.3
    with pytest.raises(ConfigError, match="same classes in the same order"):
        _alpha(DistillConfig(alpha=1.0), _source(["a", "b"]), CLASSES)


def test_teacher_cache_only_when_inputs_repeat() -> None:
    assert _use_cache(DistillConfig(), FitConfig(augment="none"))
    assert _use_cache(DistillConfig(), FitConfig(augment="none", flip=True))  # two views per image
    assert not _use_cache(DistillConfig(), FitConfig(augment="light"))
    assert not _use_cache(DistillConfig(), FitConfig(augment="none", mixup=0.2))
    assert not _use_cache(DistillConfig(cache_teacher=False), FitConfig(augment="none"))
    assert _use_cache(DistillConfig(cache_teacher=True), FitConfig(augment="light"))


def test_config_validation_and_option_split() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        DistillConfig(temperature=0)
    with pytest.raises(ConfigError, match="beta"):
        DistillConfig(beta=-1)
    d, f = split_options({"alpha": 0.5, "feature_loss": "at", "epochs": 3, "recipe": "full"})
    assert d == {"alpha": 0.5, "feature_loss": "at"} and f == {"epochs": 3, "recipe": "full"}
    with pytest.raises(ConfigError, match="feature_loss"):
        DistillConfig.from_dict({"feature_loss": "l1"})


def test_frozen_backbone_cache_only_for_logit_kd() -> None:
    from graft.distill.api import _cache_frozen

    logits_only = DistillConfig(feature_pairs="none")
    assert _cache_frozen(logits_only, None) is None  # fit's default: on in head-only epochs
    assert _cache_frozen(DistillConfig(beta=0.0), None) is None  # beta 0: no feature terms
    assert _cache_frozen(logits_only, True) is None  # never fit's prefix cache (feature maps)
    assert _cache_frozen(logits_only, False) is False
    assert _cache_frozen(DistillConfig(), None) is False  # feature pairs: the taps need the maps
    assert _cache_frozen(DistillConfig(feature_pairs="layer2:blocks.1"), True) is False


class _Stop(Exception):
    """Raised by the stand-in fit: the test only needs the options distill passes on."""


def test_grad_clip_off_unless_the_caller_sets_it(monkeypatch) -> None:
    from graft.distill import api

    seen = []

    def fake_fit(data, config=None, callbacks=None, **options):
        seen.append((config, options))
        raise _Stop

    monkeypatch.setattr(api, "fit", fake_fit)
    monkeypatch.setattr(api, "load_teacher", lambda source: _source(CLASSES))
    for extra in ({}, {"grad_clip": 0.5}, {"config": FitConfig(grad_clip=2.0)}):
        with pytest.raises(_Stop):
            api.distill("data", teacher="t", student="s", **extra)
    assert seen[0][1]["grad_clip"] == api.NO_GRAD_CLIP == 0.0  # fit's clip at 1 throttles KD
    assert seen[1][1]["grad_clip"] == 0.5
    assert "grad_clip" not in seen[2][1] and seen[2][0].grad_clip == 2.0
