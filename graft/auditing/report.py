"""``audit.html``: a self-contained page (graft.report's building blocks) with thumbnails of every
leak, duplicate group, likely label error and outlier, each with its evidence.

Example:
    >>> write_audit_report(result, "audit/audit.html", per_section=24)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from graft.auditing.result import AuditResult, Group
from graft.io import write_text
from graft.report.html import Section, esc, figure, img, page, table
from graft.report.mistakes import thumbnail

THUMB = 96


def write_audit_report(result: AuditResult, path: str | os.PathLike, per_section: int = 24) -> Path:
    """Write the audit page to ``path`` (atomically); return the path."""
    sections = [
        _summary(result),
        _groups("leaks", "Train/val/test leaks", result, result.leaks, per_section),
        _groups("exact", "Exact duplicates", result,
                [g for g in result.exact_groups if not g.leak], per_section),
        _groups("near", "Near duplicates", result,
                [g for g in result.near_groups if not g.leak], per_section),
        _labels(result, per_section),
        _outliers(result, per_section),
        _corrupt(result),
    ]  # fmt: skip
    html = page("graft audit", sections, {"counts": result.counts()})
    write_text(path, html)
    return Path(path)


def _summary(result: AuditResult) -> Section:
    rows = [[k.replace("_", " "), v] for k, v in result.counts().items()]
    return Section("summary", "Summary", table(["finding", "count"], rows))


def _thumb(result: AuditResult, i: int, lines: list[str], cls: str) -> str:
    uri = thumbnail(result.files[i], THUMB)
    if uri is None:
        return f"<p>{esc(result.files[i])} (unreadable now)</p>"
    caption = [_short(result.files[i]), f"{result.splits[i]} / {result.classes[result.labels[i]]}"]
    return figure(img(uri, result.files[i], cls, split=result.splits[i]), caption + lines)


def _groups(sid: str, title: str, result: AuditResult, groups: list[Group], n: int) -> Section:
    section = Section(sid, title)
    if not groups:
        section.notes.append("none found")
        return section
    blocks = []
    for g in groups[:n]:
        evidence = (f"aligned pixels correlate >= {g.pixel_corr_min:.3f}, feature cosine >= "
                    f"{g.cosine_min:.3f}, hashes <= {g.hash_bits_max} bits apart"
                    if g.kind == "near" else "identical bytes")  # fmt: skip
        thumbs = "".join(_thumb(result, i, [], "dup") for i in g.members[:8])
        more = f"<p>... and {len(g.members) - 8} more</p>" if len(g.members) > 8 else ""
        blocks.append(
            f'<h3>{esc(g.kind)}: {esc(evidence)}</h3><div class="grid">{thumbs}</div>{more}'
        )
    shown = f"<p>{esc(len(groups))} groups; the first {esc(min(n, len(groups)))} are shown.</p>"
    section.body = shown + "".join(blocks)
    return section


def _labels(result: AuditResult, n: int) -> Section:
    section = Section("labels", "Likely label errors")
    if not result.label_issues:
        section.notes.append("none found")
        return section
    figs = [
        _thumb(result, x.index, [f"suggested: {result.classes[x.suggested]}",
                                 f"self-confidence: {x.self_confidence:.3f}"], "label")
        for x in result.label_issues[:n]
    ]  # fmt: skip
    section.body = (f"<p>{esc(len(result.label_issues))} images, lowest self-confidence first.</p>"
                    f'<div class="grid">{"".join(figs)}</div>')  # fmt: skip
    return section


def _outliers(result: AuditResult, n: int) -> Section:
    section = Section("outliers", "Outliers")
    if not result.outliers:
        section.notes.append("none found")
        return section
    figs = [_thumb(result, o.index, [f"k-NN distance: {o.score:.3f}"], "outlier")
            for o in result.outliers[:n]]  # fmt: skip
    section.body = (f"<p>{esc(len(result.outliers))} images with a k-NN distance above "
                    f"{esc(round(result.outlier_threshold, 4))}, farthest first.</p>"
                    f'<div class="grid">{"".join(figs)}</div>')  # fmt: skip
    return section


def _corrupt(result: AuditResult) -> Section:
    section = Section("corrupt", "Corrupt files")
    if not result.corrupt:
        section.notes.append("none found")
        return section
    section.body = table(["path", "reason"], [list(c) for c in result.corrupt], numeric=False)
    return section


def _short(path: str, keep: int = 2) -> str:
    return "/".join(path.replace("\\", "/").split("/")[-keep:])
