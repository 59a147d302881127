"""Recipes as plans: phases, epochs, learning-rate spread, unfreezing specs, auto rule."""

from __future__ import annotations

import math

import pytest
import timm

from graft.errors import ConfigError, UnknownNameError
from graft.train.groups import ModelGroups
from graft.train.recipes import auto_epochs, build_plan, parse_unfreeze


@pytest.fixture(scope="module")
def groups() -> ModelGroups:
    return ModelGroups.of(timm.create_model("test_efficientnet", num_classes=3))


def test_head_and_full(groups):
    (head,) = build_plan("head", len(groups), 100, 8, epochs=3)
    assert head.trainable == (groups.head,) and head.epochs == 3 and head.bn == "frozen"
    (full,) = build_plan("full", len(groups), 100, 8, epochs=4, lr=1e-3, lr_mult=10)
    assert full.trainable == tuple(range(len(groups)))
    assert math.isclose(full.lr_of(groups.head, len(groups)), 1e-3)
    assert math.isclose(full.lr_of(0, len(groups)), 1e-4)  # stem: lr / lr_mult
    mid = full.lr_of(groups.head // 2, len(groups))
    assert 1e-4 < mid < 1e-3


def test_freeze_upto_keeps_lower_groups_at_zero_lr(groups):
    (phase,) = build_plan("freeze-upto", len(groups), 100, 8, epochs=2, freeze_upto=3)
    assert phase.trainable == tuple(range(3, len(groups)))
    assert phase.lr_of(2, len(groups)) == 0.0 and phase.lr_of(3, len(groups)) > 0
    with pytest.raises(ConfigError, match="out of range"):
        build_plan("freeze-upto", len(groups), 100, 8, freeze_upto=len(groups))


def test_progressive_by_counts_with_lr_decay(groups):
    plan = build_plan(
        "progressive", len(groups), 100, 8, epochs=6, unfreeze="2:+2,4:all", lr=1e-3, lr_decay=0.5
    )
    assert [(p.start, p.epochs) for p in plan] == [(0, 2), (2, 2), (4, 2)]
    h = groups.head
    assert [p.trainable for p in plan] == [(h,), (h - 2, h - 1, h), tuple(range(len(groups)))]
    assert [p.lr for p in plan] == [1e-3, 5e-4, 2.5e-4]


def test_progressive_by_group_names(groups):
    events = parse_unfreeze("1:blocks.3-,3:blocks.0-2;stem", len(groups), groups)
    assert events[0] == (1, tuple(groups.select("blocks.3-")))
    assert set(events[1][1]) == {0, 1, 2, 3}
    with pytest.raises(UnknownNameError, match="Did you mean"):
        parse_unfreeze("1:blokcs.3", len(groups), groups)
    with pytest.raises(ConfigError, match="EPOCH:GROUPS"):
        parse_unfreeze("x:+1", len(groups), groups)
    with pytest.raises(ConfigError, match="must increase"):
        parse_unfreeze("3:+1,2:+1", len(groups), groups)


def test_auto_rule_scales_with_dataset_size():
    assert auto_epochs(2000, 32) == (8, 3)  # 63 steps/epoch, ~200 steps
    assert auto_epochs(200, 32) == (8, 29)  # 7 steps/epoch -> clamped to 30 at most
    assert auto_epochs(20_000, 32) == (8, 2)  # 1,500 steps at 625/epoch
    assert auto_epochs(200_000, 64) == (3, 2)
    plan = build_plan("auto", 7, 2000, 32)
    assert [p.name for p in plan] == ["head", "full"] and plan.epochs == 11
    assert plan.phases[1].bn == "eval" and plan.phases[0].bn == "frozen"
    assert build_plan("auto", 7, 2000, 32, epochs=5, head_epochs=2).phases[1].epochs == 3


def test_unknown_recipe():
    with pytest.raises(UnknownNameError, match="progressive"):
        build_plan("progresive", 5, 10, 2)
