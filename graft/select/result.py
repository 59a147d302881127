"""The selection table: one row per measured candidate, the skipped ones with reasons, and the pick.

Rows are plain dicts (JSON-ready) with the columns of :data:`COLUMNS`; :meth:`SelectionResult.table`
prints them as text, :meth:`SelectionResult.to_json` writes everything.

Example:
    >>> pareto_front([(10.0, 0.9), (5.0, 0.8), (20.0, 0.85), (5.0, 0.7)])
    [True, True, False, False]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graft.io import write_json

# (key, header, format) of the text table, in order
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rank", "#", "{}"),
    ("candidate", "candidate", "{}"),
    ("params_m", "params(M)", "{:.2f}"),
    ("gmacs", "GMACs", "{:.3f}"),
    ("latency_ms", "lat(ms)", "{:.1f}"),
    ("throughput", "img/s", "{:.1f}"),
    ("peak_mem_mb", "mem(MB)", "{:.0f}"),
    ("logme", "LogME", "{:.3f}"),
    ("probe", "probe", "{:.3f}"),
    ("knn", "kNN", "{:.3f}"),
    ("hscore", "H", "{:.2f}"),
    ("leep", "LEEP", "{:.3f}"),
    ("nce", "NCE", "{:.3f}"),
    ("score", "score", "{:.3f}"),
    ("within_budget", "budget", "{}"),
    ("pareto", "pareto", "{}"),
)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (latency, score) points: True where no other point is at least as fast and as good, and
    strictly better in one (lower latency or higher score). Duplicates of a front point both count."""
    out = []
    for i, (lat, score) in enumerate(points):
        dominated = any(
            (l2 <= lat and s2 >= score) and (l2 < lat or s2 > score)
            for j, (l2, s2) in enumerate(points)
            if j != i
        )
        out.append(not dominated)
    return out


@dataclass
class SelectionResult:
    """What :func:`graft.select.select` measured and recommends."""

    rows: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    profile: dict[str, Any]
    settings: dict[str, Any]
    top: str | None = None
    fit_command: str | None = None
    warnings: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    def row(self, candidate: str) -> dict[str, Any]:
        """The row of one candidate (KeyError with the valid names otherwise)."""
        for r in self.rows:
            if r["candidate"] == candidate:
                return r
        raise KeyError(f"no row for {candidate!r}; rows: {[r['candidate'] for r in self.rows]}")

    @property
    def ranking(self) -> list[str]:
        """Candidate names, best first."""
        return [r["candidate"] for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values."""
        return {
            "top": self.top,
            "fit_command": self.fit_command,
            "rows": self.rows,
            "skipped": self.skipped,
            "profile": self.profile,
            "settings": self.settings,
            "warnings": self.warnings,
            "rules": self.rules,
            "seconds": round(self.seconds, 3),
            "files": self.files,
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` atomically to ``path``; return the path."""
        write_json(path, _finite(self.to_dict()))
        return Path(path)

    def table(self) -> str:
        """The ranked rows as an aligned text table (columns with no values are left out)."""
        cols = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in self.rows)]
        cells = [[h for _, h, _ in cols]]
        for r in self.rows:
            cells.append([_cell(r.get(k), fmt) for k, _, fmt in cols])
        widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        lines = [
            "  ".join(
                c.rjust(w) if i else c for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in cells
        ]
        return "\n".join(lines)

    def summary(self) -> str:
        """The table, skipped candidates, rule notes, warnings and the recommended command."""
        parts = [self.table()]
        if self.skipped:
            parts.append(
                "skipped:\n" + "\n".join(f"  {s['candidate']}: {s['reason']}" for s in self.skipped)
            )
        if self.rules:
            parts.append("rules matched:\n" + "\n".join(f"  {n}" for n in self.rules))
        effects = [
            f"  {r['candidate']}: {n.split(':')[0]} {n[n.rfind('(') :]}"
            for r in self.rows
            for n in r.get("notes", [])
            if n.endswith(")")
        ]
        if effects:
            parts.append("rule effects on the order of measurement:\n" + "\n".join(effects))
        notes = [f"  {r['candidate']}: {n}" for r in self.rows for n in r.get("score_notes", [])]
        if notes:
            parts.append("scores not computed (shown as -):\n" + "\n".join(notes))
        parts += [f"warning: {w}" for w in self.warnings]
        if self.top:
            parts.append(f"top pick: {self.top}\n  {self.fit_command}")
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.summary()


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return fmt.format(value)


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by None so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
