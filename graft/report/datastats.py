"""The dataset section: images per class and split (from the scan), and image sizes, colour modes
and per-channel mean/std from :func:`graft.data.dataset_stats` on a bounded, seeded sample.

Example:
    >>> section = dataset_section(ctx)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from graft.report.context import ReportContext
from graft.report.html import Section, esc, table
from graft.report.predictions import MissingPiece, bounded


def dataset_section(ctx: ReportContext) -> Section:
    """Class counts, skipped files, sizes and pixel statistics of the run's training data."""
    section = Section("dataset", "Dataset")
    if ctx.run.skipped:
        section.notes.append(f"{len(ctx.run.skipped)} file(s) were skipped while training (skipped.tsv), "
                             f"e.g. {ctx.run.skipped[0][0]}: {ctx.run.skipped[0][1]}")  # fmt: skip
    try:
        splits = ctx.splits()
    except MissingPiece as e:
        section.notes.append(f"no dataset statistics: {e}")
        return section
    section.body = f"<p>{esc(splits.source)}: {esc(splits.summary())}</p>" + _counts_table(splits)
    try:
        stats, n = _pixel_stats(splits, ctx.options.stats_images)
    except Exception as e:  # a decoding failure must not cost the whole report
        section.notes.append(f"pixel statistics failed: {type(e).__name__}: {e}")
        return section
    section.body += _stats_html(stats, n, len(splits.all_samples()), ctx)
    return section


def _counts_table(splits: Any) -> str:
    names = [s for s in ("train", "val", "test") if getattr(splits, s)]
    counts = {s: splits.counts(s) for s in names}
    rows = [
        [c, *(counts[s][c] for s in names), sum(counts[s][c] for s in names)]
        for c in splits.classes
    ]
    rows.append(["all", *(len(getattr(splits, s)) for s in names), len(splits.all_samples())])
    return table(["class", *names, "total"], rows)


def _pixel_stats(splits: Any, limit: int) -> tuple[Any, int]:
    from graft.data import Splits, dataset_stats

    sample = bounded(splits.all_samples(), limit, seed=0)
    part = Splits(classes=list(splits.classes), train=sample, source=splits.source)
    # rank 0 alone writes the report: no collective with the other ranks of a DDP run
    stats = dataset_stats(part, model=None, progress=False, executor="serial", distributed=False)
    return stats, len(sample)


def _stats_html(stats: Any, n: int, total: int, ctx: ReportContext) -> str:
    channels = ["R", "G", "B"]
    rows = [
        [channels[i], float(m), float(s)]
        for i, (m, s) in enumerate(zip(stats.mean, stats.std, strict=True))
    ]
    size = stats.sizes or {}
    w, h = size.get("width", {}), size.get("height", {})
    lines = [
        f"Image statistics from {n} of {total} images (seeded sample): "
        f"width {w.get('min')}/{w.get('median')}/{w.get('max')}, height {h.get('min')}/{h.get('median')}/"
        f"{h.get('max')} px (min/median/max), {size.get('distinct_sizes', 0)} distinct sizes; "
        f"modes {stats.modes}; grayscale {stats.grayscale_share:.0%}.",
    ]
    out = f"<p>{esc(lines[0])}</p>" + table(["channel", "mean", "std"], rows)
    advice = _normalization_advice(stats, ctx)
    return out + (f"<p>{esc(advice)}</p>" if advice else "")


def _normalization_advice(stats: Any, ctx: ReportContext) -> str:
    """How the sample compares with the mean/std the model normalizes with."""
    from graft.data.stats import recommend_normalization

    cfg = (ctx.run.bundle_meta or {}).get("data_config") or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if not mean or not std or len(mean) not in (1, 3):
        return ""
    mean, std = (list(mean) * 3, list(std) * 3) if len(mean) == 1 else (list(mean), list(std))
    choice, reason = recommend_normalization(
        stats.mean, stats.std, stats.grayscale_share, mean, std
    )
    return f"Compared with the model's normalization: {choice} recommended ({reason})."
