"""LR schedules are pure functions of the step: exact values at known points."""

from __future__ import annotations

import math

import pytest

from graft.errors import UnknownNameError
from graft.train.schedules import lr_at, warmup_steps


def test_cosine_warmup_then_half_cosine():
    assert math.isclose(lr_at("cosine", 0, 100, warmup=10), 0.1)
    assert math.isclose(lr_at("cosine", 4, 100, warmup=10), 0.5)
    assert math.isclose(lr_at("cosine", 10, 100, warmup=10), 1.0)
    assert math.isclose(
        lr_at("cosine", 55, 100, warmup=10), 0.5
    )  # half-way through the 90 decay steps
    assert math.isclose(
        lr_at("cosine", 99, 100, warmup=10), 0.5 * (1 + math.cos(math.pi * 89 / 90))
    )
    assert math.isclose(lr_at("cosine", 55, 100, warmup=10, floor=0.2), 0.6)


def test_onecycle_rises_from_1_25th_to_peak_at_30_percent():
    assert math.isclose(lr_at("onecycle", 0, 100), 1 / 25)
    assert math.isclose(lr_at("onecycle", 15, 100), 1 / 25 + (1 - 1 / 25) * 0.5)
    assert math.isclose(lr_at("onecycle", 30, 100), 1.0)
    assert lr_at("onecycle", 99, 100) < 0.001


def test_step_decays_at_half_and_three_quarters():
    assert [lr_at("step", s, 100) for s in (0, 49)] == [1.0, 1.0]
    assert math.isclose(lr_at("step", 50, 100), 0.1)
    assert math.isclose(lr_at("step", 75, 100, gamma=0.5), 0.25)


def test_constant_and_clamping():
    assert lr_at("constant", 5, 10, warmup=0) == 1.0
    assert lr_at("cosine", -3, 10) == lr_at("cosine", 0, 10)
    assert lr_at("cosine", 500, 10) == lr_at("cosine", 9, 10)
    assert lr_at("cosine", 0, 1) == 1.0
    assert warmup_steps(0.1, 95) == 10


def test_unknown_schedule_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean: cosine"):
        lr_at("cosin", 0, 10)
