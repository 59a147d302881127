"""The audit's output folder and its stdout summary.

``OUT/`` holds (each written atomically):

- ``audit.json``: every finding with paths, splits, scores and evidence (:meth:`AuditResult.to_dict`)
- ``issues.csv``: one row per flagged image (``path, split, label, issues, group, similarity,
  hash_bits, pixel_corr, self_confidence, suggested_label, outlier_score, action``), leaks first
- ``clean.csv``: ``path,label,split`` of the train/val images the audit suggests keeping; ``graft fit
  OUT/clean.csv`` reads it directly (the split column is informational; fit carves its own val)
- ``audit.html``: thumbnails of leaks, groups, label suspects and outliers
- ``config.yaml``: the resolved options

Example:
    >>> print(summary_table(result))  # doctest: +SKIP
    finding            count
    images             10000
    ...
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from graft import config as _config
from graft.auditing.result import AuditResult
from graft.io import write_json, write_text

ISSUE_COLUMNS = (
    "path", "split", "label", "issues", "group", "similarity", "hash_bits", "pixel_corr",
    "self_confidence",
    "suggested_label", "outlier_score", "action",
)  # fmt: skip


def write_outputs(result: AuditResult, cfg: Any) -> Path:
    """Write every output file into ``cfg.out``; return the folder."""
    from graft.auditing.report import write_audit_report

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _config.save(cfg, out / "config.yaml")
    write_json(out / "audit.json", result.to_dict())
    write_text(out / "issues.csv", issues_csv(result))
    write_text(out / "clean.csv", clean_csv(result))
    write_audit_report(result, out / "audit.html", cfg.thumbnails)
    return out


def issue_rows(result: AuditResult) -> list[dict[str, Any]]:
    """One dict per flagged image (columns :data:`ISSUE_COLUMNS`), leaks first, then by kind."""
    rows: dict[int, dict[str, Any]] = {}

    def row(i: int) -> dict[str, Any]:
        if i not in rows:
            rows[i] = dict.fromkeys(ISSUE_COLUMNS, "")
            rows[i].update(path=result.files[i], split=result.splits[i],
                           label=result.classes[result.labels[i]], issues=[])  # fmt: skip
        return rows[i]

    groups = [("exact", g) for g in result.exact_groups] + [("near", g) for g in result.near_groups]
    for number, (kind, g) in enumerate(sorted(groups, key=lambda kg: not kg[1].leak), start=1):
        for i in g.members:
            r = row(i)
            r["issues"] += (["leak"] if g.leak else []) + [f"{kind}-duplicate"]
            r["group"] = r["group"] or f"{kind}-{number}"
            if kind == "near":
                r["similarity"], r["hash_bits"] = round(g.cosine_min, 4), g.hash_bits_max
                r["pixel_corr"] = round(g.pixel_corr_min, 4)
    for x in result.label_issues:
        r = row(x.index)
        r["issues"].append("label")
        r["self_confidence"] = round(x.self_confidence, 4)
        r["suggested_label"] = result.classes[x.suggested]
    for o in result.outliers:
        r = row(o.index)
        r["issues"].append("outlier")
        r["outlier_score"] = round(o.score, 4)
    for i, r in rows.items():
        r["action"] = _action(result, i, r["issues"])
        r["issues"] = ";".join(dict.fromkeys(r["issues"]))
    order = {"leak": 0, "exact-duplicate": 1, "near-duplicate": 2, "label": 3, "outlier": 4}
    return sorted(rows.values(), key=lambda r: (order[r["issues"].split(";")[0]], r["group"]))


def _action(result: AuditResult, i: int, issues: list[str]) -> str:
    if i in result.drop:
        return "drop"
    return "review" if result.splits[i] == "test" or "outlier" in issues else "keep"


def issues_csv(result: AuditResult) -> str:
    """``issues.csv`` as text, with a header."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ISSUE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(issue_rows(result))
    return buf.getvalue()


def clean_csv(result: AuditResult) -> str:
    """``clean.csv`` as text: ``path,label,split`` of the kept train/val images."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "split"])
    writer.writerows(result.clean_samples())
    return buf.getvalue()


def summary_table(result: AuditResult) -> str:
    """A two-column table of the counts, and the output files when there are any."""
    c = result.counts()
    rows = [
        ("images audited", c["images"]),
        ("corrupt files (skipped)", c["corrupt"]),
        ("train/val/test leaks (groups)", c["leaks"]),
        ("exact duplicate groups", f"{c['exact_groups']} ({c['exact_extra_copies']} extra copies)"),
        ("near-duplicate groups", c["near_groups"]),
        ("likely label errors", c["label_issues"]),
        ("outliers", c["outliers"]),
        ("clean split: kept / dropped", f"{c['kept']} / {c['dropped']}"),
        ("seconds", f"{sum(result.seconds.values()):.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{'finding':<{width}}  count", *(f"{k:<{width}}  {v}" for k, v in rows)]
    if result.out:
        out = Path(result.out)
        lines += ["", *(f"{name:<12} {out / name}" for name in
                        ("audit.json", "issues.csv", "clean.csv", "audit.html"))]  # fmt: skip
    return "\n".join(lines)
