"""Confusion matrix (figure) and per-class precision / recall / F1 / support (table).

Example:
    >>> sections = [confusion_section(ctx), per_class_section(ctx)]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from graft.inference.plots import confusion_figure
from graft.report.context import ReportContext
from graft.report.figures import figure_data_uri
from graft.report.html import Section, esc, img, table


def confusion_section(ctx: ReportContext) -> Section:
    """Counts with row-normalised colours (recall per true class)."""
    section = Section("confusion-matrix", "Confusion matrix")
    preds = ctx.predictions_or_note(section.notes)
    if preds is None:
        return section
    matrix = preds.metrics.get("confusion_matrix")
    if not matrix:
        section.notes.append(f"{preds.source} holds no confusion matrix")
        return section
    uri = plot_confusion(matrix, preds.classes)
    section.body = (f"<p>{esc(preds.source)}</p>"
                    + img(uri, "confusion matrix", "plot confusion", classes=len(preds.classes)))  # fmt: skip
    return section


def per_class_section(ctx: ReportContext) -> Section:
    """Precision, recall, F1 and support per class, plus the overall accuracies."""
    section = Section("per-class", "Per-class scores")
    preds = ctx.predictions_or_note(section.notes)
    if preds is None:
        return section
    rows = [[r["class"], float(r["precision"]), float(r["recall"]), float(r["f1"]), int(r["support"])]
            for r in preds.metrics.get("per_class") or []]  # fmt: skip
    overall = [("accuracy", preds.metrics.get("accuracy")),
               ("balanced accuracy", preds.metrics.get("balanced_accuracy")),
               ("macro F1", preds.metrics.get("macro_f1"))]  # fmt: skip
    summary = ", ".join(f"{k} {v:.4f}" for k, v in overall if isinstance(v, (int, float)))
    section.notes.extend(preds.notes)
    section.body = (f"<p>{esc(preds.source)}. {esc(summary)}</p>"
                    + table(["class", "precision", "recall", "F1", "support"], rows))  # fmt: skip
    return section


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as a ``data:`` URI (the figure of ``graft evaluate``'s PNG)."""
    return figure_data_uri(confusion_figure(matrix, classes))
