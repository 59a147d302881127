"""Score against latency, with the Pareto front and the latency budget (matplotlib, Agg backend).

Example:
    >>> plot_selection(result, "select/score_vs_latency.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from graft.io import atomic_path
from graft.select.result import SelectionResult


def plot_selection(result: SelectionResult, path: str | os.PathLike) -> Path:
    """Write a PNG of each candidate's score against its batch-1 latency; return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.rows if r.get("score") is not None and r.get("latency_ms")]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in rows:
        marker = "x" if r.get("control") else ("o" if r["pareto"] else "s")
        color = (
            "tab:red"
            if r["candidate"] == result.top
            else ("tab:gray" if r.get("control") else "tab:blue")
        )
        ax.scatter(r["latency_ms"], r["score"], marker=marker, color=color, s=50, zorder=3)
        ax.annotate(
            r["candidate"],
            (r["latency_ms"], r["score"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    front = sorted((r["latency_ms"], r["score"]) for r in rows if r["pareto"])
    if len(front) > 1:
        ax.step(
            *zip(*front, strict=True),
            where="post",
            color="tab:blue",
            alpha=0.5,
            label="Pareto front",
        )
    budget = result.settings.get("latency_budget_ms")
    if budget:
        ax.axvline(budget, color="tab:orange", linestyle="--", label=f"budget {budget:g} ms")
    ax.set_xlabel(f"latency at batch 1 (ms, {result.settings.get('device', 'cpu')})")
    ax.set_ylabel(f"score ({result.settings.get('rank_by')})")
    ax.set_title("graft select: transferability vs latency")
    ax.grid(alpha=0.3)
    if len(front) > 1 or budget:  # only then is there a labelled line to show
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
