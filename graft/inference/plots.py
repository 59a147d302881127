"""Confusion matrix as a PNG (matplotlib, headless).

Example:
    >>> plot_confusion([[5, 1], [0, 6]], ["cat", "dog"], "cm.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graft.io import atomic_path


def plot_confusion(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], out: str | os.PathLike
) -> Path:
    """Draw counts with row-normalised colours (recall per true class); write ``out`` atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(matrix)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    n = len(classes)
    size = min(3 + 0.45 * n, 24)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    try:
        im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        ax.set(
            xticks=range(n),
            yticks=range(n),
            xlabel="predicted",
            ylabel="true",
            title="confusion matrix",
        )
        ax.set_xticklabels(classes, rotation=45, ha="right")
        ax.set_yticklabels(classes)
        if n <= 30:
            for i in range(n):
                for j in range(n):
                    color = "white" if frac[i, j] > 0.5 else "black"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color, fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
        fig.tight_layout()
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return Path(out)
