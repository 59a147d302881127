"""Confusion matrix as a matplotlib figure (headless), and as a PNG file.

Example:
    >>> plot_confusion([[5, 1], [0, 6]], ["cat", "dog"], "cm.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graft.io import atomic_path


def confusion_figure(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str | None = None
) -> Any:
    """Counts with row-normalised colours (recall per true class); counts written up to 30 classes.

    The caller saves and closes the returned figure (``graft report`` embeds it in the page).

    Example:
        >>> fig = confusion_figure([[5, 1], [0, 6]], ["cat", "dog"])  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(matrix)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    n = len(classes)
    size = min(3 + 0.45 * n, 24)
    fig, ax = plt.subplots(figsize=(size + 1, size * 0.85))
    try:
        shown = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true")
        if title:
            ax.set_title(title)
        ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticklabels(classes, fontsize=8)
        if n <= 30:
            for i in range(n):
                for j in range(n):
                    color = "white" if frac[i, j] > 0.5 else "black"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color, fontsize=8)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig


def plot_confusion(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], out: str | os.PathLike
) -> Path:
    """Write the confusion matrix of :func:`confusion_figure` to ``out`` (PNG) atomically."""
    import matplotlib.pyplot as plt

    fig = confusion_figure(matrix, classes, title="confusion matrix")
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return Path(out)
