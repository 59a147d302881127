"""The ranking of measured candidates: consensus of scores, latency budget, Pareto front, warnings.

Example:
    >>> consensus([{"a": 1.0}, {"a": 3.0}], ["a"])
    [0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graft.select.result import pareto_front


def rank_rows(rows: list[dict], settings: dict) -> list[str]:
    """Fill score, within_budget, pareto and rank; sort rows best first; return warnings."""
    if not rows:
        return ["no candidate could be measured; see skipped."]
    rank_by, budget = settings["rank_by"], settings["latency_budget_ms"]
    values = (
        consensus(rows, settings["scores"])
        if rank_by == "consensus"
        else [r.get(rank_by) for r in rows]
    )
    for r, v in zip(rows, values, strict=True):
        r["score"] = v
        r["within_budget"] = None if budget is None else bool(r["latency_ms"] <= budget)
    rows.sort(key=lambda r: (r["within_budget"] is False, -_num(r["score"]), r["latency_ms"]))
    front = pareto_front([(r["latency_ms"], _num(r["score"])) for r in rows])
    for i, (r, on_front) in enumerate(zip(rows, front, strict=True), start=1):
        r["rank"], r["pareto"] = i, on_front
    return control_warning(rows)


def consensus(rows: Sequence[dict], scores: Sequence[str]) -> list[float]:
    """Mean over ``scores`` of each row's rank scaled to 0 (worst) .. 1 (best); ties share ranks.

    A score that does not apply to a row (``None``, e.g. LEEP for a hybrid) is left out of that row's
    mean and of the ranking for that score; a score that failed (NaN) ranks last.

    Example:
        >>> consensus([{"a": 1.0, "b": 0.5}, {"a": 2.0, "b": 0.5}], ["a", "b"])
        [0.25, 0.75]
        >>> consensus([{"a": 1.0, "b": None}, {"a": 2.0, "b": 0.5}, {"a": 3.0, "b": 0.1}], ["a", "b"])
        [0.0, 0.75, 0.5]
    """
    from scipy.stats import rankdata

    per_score = []
    for name in scores:
        present = np.array([r.get(name) is not None for r in rows])
        vals = np.array([_num(r.get(name)) for r in rows])
        if np.isfinite(vals).sum() < 1:
            continue
        scaled = np.full(len(rows), np.nan)
        ranks = rankdata(vals[present])
        scaled[present] = (ranks - 1) / max(int(present.sum()) - 1, 1)
        per_score.append(scaled)
    if not per_score:
        return [float("nan")] * len(rows)
    stacked = np.array(per_score)
    counts = np.isfinite(stacked).sum(axis=0)
    means = np.where(counts > 0, np.nansum(stacked, axis=0) / np.maximum(counts, 1), np.nan)
    return [float(v) for v in means]


def _num(value: Any) -> float:
    return float(value) if value is not None and np.isfinite(value) else float("-inf")


def control_warning(rows: list[dict]) -> list[str]:
    controls = [r for r in rows if r["control"]]
    real = [r for r in rows if not r["control"]]
    if controls and real and _num(controls[0]["score"]) >= max(_num(r["score"]) for r in real):
        return [
            f"the randomly initialised control {controls[0]['candidate']} scores as well as the pretrained "
            "candidates: the sample may be too small or the pretrained features do not fit this data."
        ]
    return []


def no_pick_reason(rows: list[dict], budget: float | None) -> str:
    fastest = min(
        (r for r in rows if not r["control"]), key=lambda r: r["latency_ms"], default=None
    )
    if fastest is None:
        return "only the control was measured; no recommendation."
    return (
        f"no candidate meets the latency budget of {budget:g} ms; the fastest, {fastest['candidate']}, "
        f"takes {fastest['latency_ms']:.1f} ms. Raise the budget or add lighter candidates."
    )
