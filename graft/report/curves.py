"""Training curves: loss, accuracy (train and val) and the learning rate of every parameter group,
with the unfreezing events drawn as labelled vertical lines.

The x axis counts epochs: an epoch's metrics sit at its end (epoch ``e`` at ``e + 1``), a phase that
starts at epoch ``e`` is a line at ``e``, and per-step learning rates fall in between.

Example:
    >>> curves = plot_curves(read_run("runs/pets"))  # doctest: +SKIP
    >>> curves.plotted["lr"]  # doctest: +SKIP
    ['stem', 'blocks.0', 'blocks.1', 'head']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graft.report.collect import RunData
from graft.report.figures import figure_data_uri, pyplot

LOSS_KEYS = {"train": ("train_loss_epoch", "train_loss"), "val": ("val_loss",)}
ACC_KEYS = {"train": ("train_acc",), "val": ("val_acc",)}


@dataclass
class Curves:
    """The figure (``data:`` URI, ``None`` when nothing was logged), what each panel shows, notes."""

    image: str | None
    plotted: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plot_curves(run: RunData, group_names: Callable[[], list[str]] | None = None) -> Curves:
    """Loss, accuracy and per-group learning-rate panels for ``run`` (see the module docstring).

    ``group_names`` (called only when needed) gives the model's parameter groups, stem -> head, for
    runs that logged only the head's learning rate: the others are then reconstructed.
    """
    notes: list[str] = []
    loss = {name: epoch_series(run.history, keys) for name, keys in LOSS_KEYS.items()}
    acc = {name: epoch_series(run.history, keys) for name, keys in ACC_KEYS.items()}
    lrs = lr_series(run)
    if not run.history:
        notes.append("metrics.csv is missing or empty: no per-epoch loss or accuracy to draw.")
    if not lrs:
        notes.append(
            "no learning rate was logged (logs/metrics.csv is missing or has no lr_* column)."
        )
    elif list(lrs) == ["head"]:
        lrs, note = _only_head(run, lrs, group_names)
        notes.append(note)
    plotted = {
        "loss": [k for k, v in loss.items() if v[0]],
        "accuracy": [k for k, v in acc.items() if v[0]],
        "lr": list(lrs),
        "events": [int(e.get("epoch", 0)) for e in run.events],
    }
    if not any([plotted["loss"], plotted["accuracy"], plotted["lr"]]):
        return Curves(None, plotted, notes)
    return Curves(_draw(loss, acc, lrs, run.events), plotted, notes)


def epoch_series(
    history: list[dict[str, Any]], keys: tuple[str, ...]
) -> tuple[list[float], list[float]]:
    """(x, y) of the first of ``keys`` present in each epoch row; x is the epoch's end.

    Example:
        >>> epoch_series([{"epoch": 0.0, "val_acc": 0.5}, {"epoch": 1.0}], ("val_acc",))
        ([1.0], [0.5])
    """
    xs, ys = [], []
    for row in history:
        value = next((row[k] for k in keys if isinstance(row.get(k), float)), None)
        if value is not None and isinstance(row.get("epoch"), float):
            xs.append(row["epoch"] + 1)
            ys.append(value)
    return xs, ys


def lr_series(run: RunData) -> dict[str, tuple[list[float], list[float]]]:
    """Group name -> (x in epochs, learning rate) from the per-step rows, ordered stem -> head.

    Example:
        >>> from pathlib import Path
        >>> rows = [{"epoch": 0.0, "step": 0.0, "lr_head": 1.0, "lr_stem": 0.0}, {"epoch": 0.0, "step": 1.0}]
        >>> list(lr_series(RunData(Path("r"), steps=rows)))
        ['stem', 'head']
    """
    rows = [r for r in run.steps if any(k.startswith("lr_") for k in r)]
    names = order_groups({k[3:] for r in rows for k in r if k.startswith("lr_")}, run.events)
    xs = step_positions(run.steps, rows)
    out = {}
    for name in names:
        pairs = [(x, r[f"lr_{name}"]) for x, r in zip(xs, rows, strict=True) if f"lr_{name}" in r]
        out[name] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return out


def _only_head(
    run: RunData, lrs: dict[str, Any], group_names: Callable[[], list[str]] | None
) -> tuple[dict[str, Any], str]:
    old = "this run logged only the head's learning rate (it predates per-group logging)"
    phases = ((run.bundle_meta or {}).get("recipe") or {}).get("phases")
    try:
        names = group_names() if group_names and phases else []
    except Exception:  # noqa: BLE001 - no model, no reconstruction; the head's curve stays
        names = []
    if not names:
        return lrs, old + "; one curve is shown."
    return reconstruct_group_lrs(lrs["head"], phases, names), (
        old + "; the other groups' curves are reconstructed from it and the recipe's phases "
        "(within a phase each group's LR is the head's times a fixed ratio)."
    )


def reconstruct_group_lrs(
    head: tuple[list[float], list[float]], phases: list[dict[str, Any]], names: list[str]
) -> dict[str, tuple[list[float], list[float]]]:
    """Every group's learning rate from the head's: within a phase, group ``g`` runs at
    ``lr_of(g) / lr_of(head)`` times the head's rate (one schedule factor for all groups).

    Example:
        >>> phases = [{"name": "full", "start": 0, "epochs": 1, "trainable_groups": [0, 1],
        ...            "lr": 1.0, "lr_mult": 10.0}]
        >>> reconstruct_group_lrs(([0.5], [1.0]), phases, ["stem", "head"])["stem"]
        ([0.5], [0.1])
    """
    from graft.train.recipes import Phase, Plan

    plan = Plan(tuple(Phase(str(p.get("name")), int(p["start"]), int(p["epochs"]),
                            tuple(p["trainable_groups"]), float(p["lr"]), float(p.get("lr_mult", 1.0)))
                      for p in phases))  # fmt: skip
    n = len(names)
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names[:-1]}
    for x, lr in zip(*head, strict=True):
        phase = plan.phases[plan.index_at(min(int(x), plan.epochs - 1))]
        base = phase.lr_of(n - 1, n)
        for g, name in enumerate(names[:-1]):
            out[name][0].append(x)
            out[name][1].append(lr * phase.lr_of(g, n) / base if base else 0.0)
    out["head"] = head
    return out


def step_positions(all_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[float]:
    """x (in epochs) of step rows: ``epoch + fraction`` of the way from the previous epoch's last
    logged step to this epoch's last one (epoch-level rows carry the step at the epoch's end)."""
    last: dict[int, float] = {}
    for r in all_rows:
        if isinstance(r.get("epoch"), float) and isinstance(r.get("step"), float):
            e = int(r["epoch"])
            last[e] = max(last.get(e, r["step"]), r["step"])
    out = []
    for r in rows:
        e, step = int(r.get("epoch", 0)), float(r.get("step", 0.0))
        start = last.get(e - 1, -1.0) + 1
        span = max(last.get(e, step) + 1 - start, 1.0)
        out.append(e + min(max((step - start) / span, 0.0), 1.0))
    return out


def order_groups(names: set[str], events: list[dict[str, Any]]) -> list[str]:
    """Group names stem -> head: the order of the longest unfreezing event, then natural order.

    Example:
        >>> order_groups({"head", "blocks.10", "blocks.2", "stem"}, [])
        ['stem', 'blocks.2', 'blocks.10', 'head']
    """
    known = max((list(e.get("trainable") or []) for e in events), key=len, default=[])
    ordered = [n for n in known if n in names]
    rest = sorted(names - set(ordered), key=_natural)
    merged = ordered + rest
    return sorted(merged, key=lambda n: (n != "stem", n == "head", merged.index(n)))


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _draw(loss, acc, lrs, events) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, series, title in ((axes[0], loss, "loss"), (axes[1], acc, "accuracy")):
        for name, (xs, ys) in series.items():
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=name)
        ax.set(title=title, xlabel="epoch")
    cmap = plt.get_cmap("viridis")
    for i, (name, (xs, ys)) in enumerate(lrs.items()):
        color = "crimson" if name == "head" else cmap(i / max(len(lrs) - 1, 1) * 0.9)
        axes[2].plot(xs, ys, label=name, color=color, lw=1.4)
    axes[2].set(title="learning rate per parameter group", xlabel="epoch")
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes:
        _mark_events(ax, events)
        if ax.get_legend_handles_labels()[0] and ax is axes[2]:  # many groups: beside the panel
            ax.legend(
                fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 + len(lrs) // 16
            )
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_data_uri(fig)


def _mark_events(ax: Any, events: list[dict[str, Any]]) -> None:
    top = ax.get_ylim()[1]
    for event in events:
        x = int(event.get("epoch", 0))
        ax.axvline(x, color="gray", ls="--", lw=1)
        label = f"{event.get('phase', '')}: {len(event.get('trainable') or [])} groups"
        ax.text(x, top, " " + label, rotation=90, va="top", ha="right", fontsize=7, color="dimgray")
