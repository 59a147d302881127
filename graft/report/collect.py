"""Read what ``graft fit`` left in a run folder: config, per-epoch and per-step logs, events, bundle.

Only ``config.yaml`` plus one of ``bundle/model.json``, ``metrics.csv``, ``logs/metrics.csv`` are
required (:class:`RunFolderError` names what is missing); every other piece is optional and its
absence becomes a note in the report.

Example:
    >>> run = read_run("runs/pets")  # doctest: +SKIP
    >>> run.config["model"], len(run.history), [e["epoch"] for e in run.events]  # doctest: +SKIP
    ('efficientnet_lite0', 10, [0, 8])
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graft.errors import GraftError
from graft.io import read_json


class RunFolderError(GraftError, FileNotFoundError):
    """The folder given to ``graft report`` is not a run folder written by ``graft fit``."""


@dataclass
class RunData:
    """Everything read from a run folder; missing pieces are ``None`` / empty, with a note."""

    run_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics.csv, one row per epoch
    steps: list[dict[str, float]] = field(default_factory=list)  # logs*/metrics.csv, raw rows
    events: list[dict[str, Any]] = field(default_factory=list)  # unfreezing events
    metrics: dict[str, Any] = field(default_factory=dict)  # final metrics
    weights: dict[str, Any] = field(default_factory=dict)  # WiSE-FT / averaging choices
    bundle_meta: dict[str, Any] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # piece -> why it is missing

    @property
    def bundle_dir(self) -> Path:
        return self.run_dir / "bundle"


def read_run(run_dir: str | os.PathLike) -> RunData:
    """Read ``run_dir``; raise :class:`RunFolderError` when it is not a run folder.

    Example:
        >>> read_run("runs/none")  # doctest: +SKIP
        Traceback (most recent call last):
        graft.report.collect.RunFolderError: runs/none does not exist ...
    """
    run = Path(run_dir)
    check_run_folder(run)
    data = RunData(run)
    data.config_text = (run / "config.yaml").read_text(encoding="utf-8")
    data.config = _yaml(data.config_text, run / "config.yaml")
    data.history = _read_csv(run / "metrics.csv")
    from graft.train.outputs import (
        log_files,  # fit's run-folder layout (imports torch: not at start)
    )

    data.steps = [row for path in log_files(run) for row in _read_csv(path)]
    _read_final(run, data)
    data.skipped = _read_skipped(run / "skipped.tsv")
    return data


def check_run_folder(run: Path) -> None:
    """Raise :class:`RunFolderError` naming what is missing when ``run`` is not a fit run folder."""
    hint = "Pass the --out folder of `graft fit` (it holds config.yaml, metrics.csv and bundle/)."
    if not run.exists():
        raise RunFolderError(f"{run} does not exist. {hint}")
    if not run.is_dir():
        raise RunFolderError(f"{run} is a file, not a run folder. {hint}")
    results = [run / "bundle" / "model.json", run / "metrics.csv", run / "logs" / "metrics.csv"]
    missing = [] if (run / "config.yaml").is_file() else ["config.yaml"]
    if not any(p.is_file() for p in results):
        missing.append("any training output (" + ", ".join(_rel(p, run) for p in results) + ")")
    if missing:
        raise RunFolderError(
            f"{run} is not a graft run folder: missing {' and '.join(missing)}. {hint}"
        )


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root))


def _yaml(text: str, path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RunFolderError(f"{path} is not valid YAML ({e}); was it edited by hand?") from e
    return loaded if isinstance(loaded, dict) else {}


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows with numbers as floats (text kept as text); [] when the file is missing."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: _number(v) for k, v in row.items() if k and v not in ("", None)}
            for row in csv.DictReader(f)
        ]


def _number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _read_final(run: Path, data: RunData) -> None:
    meta_path = run / "bundle" / "model.json"
    if meta_path.is_file():
        try:
            data.bundle_meta = read_json(meta_path)
        except GraftError as e:
            data.notes["bundle"] = str(e)
    else:
        data.notes["bundle"] = f"no bundle in {run / 'bundle'} (the run did not finish?)"
    summary = run / "metrics.json"
    if summary.is_file():
        try:
            loaded = read_json(summary)
            data.metrics = dict(loaded.get("metrics") or {})
            data.events = list(loaded.get("unfreezing") or [])
            data.weights = dict(loaded.get("weights") or {})
        except (GraftError, AttributeError) as e:
            data.notes["metrics"] = f"{summary} could not be read: {e}"
    if not data.metrics and data.bundle_meta:
        data.metrics = dict(data.bundle_meta.get("metrics") or {})
    if not data.events:
        data.events = _events_from_recipe(data.bundle_meta)


def _events_from_recipe(meta: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Phase starts from the bundle's recipe when metrics.json is missing (group indices, no names)."""
    phases = ((meta or {}).get("recipe") or {}).get("phases") or []
    return [
        {"epoch": int(p.get("start", 0)), "phase": p.get("name", "?"),
         "trainable": [f"group {g}" for g in p.get("trainable_groups", [])]}
        for p in phases
    ]  # fmt: skip


def _read_skipped(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        path_text, _, reason = line.partition("\t")
        if path_text and path_text != "path":
            rows.append((path_text, reason))
    return rows
