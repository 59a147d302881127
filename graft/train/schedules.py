"""Learning-rate schedules as pure functions of progress: ``lr_at(step, total)`` -> multiplier.

Each returns the factor applied to a group's base learning rate at ``step`` (0-based) of a phase of
``total`` steps. They hold no state, so a resumed run computes exactly the same rates.

- ``cosine``: linear warmup from 0 over ``warmup`` steps, then half a cosine from 1 down to ``floor``.
- ``onecycle``: warmup over ``max(warmup, 30%)`` of the steps from 1/25, then cosine down to ``floor``.
- ``step``: warmup, then 1 until 50%, ``gamma`` until 75%, ``gamma**2`` after.
- ``constant``: warmup, then 1.

Example:
    >>> lr_at("cosine", 0, 100, warmup=10)
    0.1
    >>> lr_at("cosine", 10, 100, warmup=10)
    1.0
    >>> round(lr_at("cosine", 99, 100, warmup=10), 4)
    0.0003
"""

from __future__ import annotations

import math

from graft.errors import raise_unknown

SCHEDULES = ("cosine", "onecycle", "step", "constant")


def lr_at(
    kind: str,
    step: int,
    total: int,
    warmup: int = 0,
    floor: float = 0.0,
    gamma: float = 0.1,
) -> float:
    """The LR multiplier of schedule ``kind`` at ``step`` of ``total`` steps (see module doc)."""
    if kind not in SCHEDULES:
        raise_unknown("schedule", kind, SCHEDULES)
    total = max(int(total), 1)
    step = min(max(int(step), 0), total - 1)
    if kind == "onecycle":
        return _onecycle(step, total, warmup, floor)
    if step < warmup:
        return _linear_warmup(step, warmup)
    if kind == "cosine":
        return _cosine(step - warmup, total - warmup, floor)
    if kind == "step":
        progress = step / total
        return 1.0 if progress < 0.5 else (gamma if progress < 0.75 else gamma**2)
    return 1.0


def warmup_steps(fraction: float, total: int) -> int:
    """Number of warmup steps for a ``fraction`` of a phase of ``total`` steps."""
    return int(round(fraction * total))


def _linear_warmup(step: int, warmup: int) -> float:
    return (step + 1) / warmup if warmup else 1.0


def _cosine(step: int, total: int, floor: float) -> float:
    if total <= 1:
        return 1.0
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * step / total))


def _onecycle(step: int, total: int, warmup: int, floor: float) -> float:
    up = max(warmup, int(round(0.3 * total)), 1)
    start = 1.0 / 25.0
    if step < up:
        return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * step / up))
    return _cosine(step - up, total - up, floor)
