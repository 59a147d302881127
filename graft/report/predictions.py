"""Predictions for the report: from ``graft evaluate`` outputs, or computed on the run's validation
split with the bundle (bounded in size).

``graft evaluate --out DIR`` writes ``predictions.csv`` (path, true, predicted, prob, correct) and
``metrics.json`` (per-class scores, confusion matrix); :func:`find_evaluation` looks for such a folder
inside the run folder when none is named.

Example:
    >>> preds = load_evaluation("runs/pets/eval")  # doctest: +SKIP
    >>> preds.source, preds.metrics["accuracy"]  # doctest: +SKIP
    ('graft evaluate outputs in runs/pets/eval (split test, 120 images)', 0.93)
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graft.errors import GraftError
from graft.io import read_json


class MissingPiece(Exception):
    """An optional input of the report is unavailable; the message becomes the section's note."""


@dataclass
class Predictions:
    """Per-image predictions: ``true``/``pred`` index ``classes``; ``confidence`` is the predicted
    class's probability; ``metrics`` is :func:`graft.inference.metrics.classification_metrics`' dict."""

    classes: list[str]
    paths: list[str]
    true: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    metrics: dict[str, Any]
    source: str
    notes: list[str] = field(default_factory=list)


def find_evaluation(run_dir: Path) -> Path | None:
    """The newest folder directly inside ``run_dir`` holding ``predictions.csv`` and ``metrics.json``."""
    found = [
        p for p in run_dir.iterdir()
        if p.is_dir() and (p / "predictions.csv").is_file() and (p / "metrics.json").is_file()
    ]  # fmt: skip
    return max(found, key=lambda p: (p / "metrics.json").stat().st_mtime) if found else None


def load_evaluation(eval_dir: str | os.PathLike) -> Predictions:
    """Predictions and metrics written by ``graft evaluate --out eval_dir``."""
    folder = Path(eval_dir)
    for name in ("predictions.csv", "metrics.json"):
        if not (folder / name).is_file():
            raise MissingPiece(
                f"{folder} has no {name} (written by `graft evaluate --out {folder}`)"
            )
    try:
        metrics = read_json(folder / "metrics.json")
    except GraftError as e:
        raise MissingPiece(str(e)) from e
    classes = [row["class"] for row in metrics.get("per_class") or []]
    index = {c: i for i, c in enumerate(classes)}
    paths, true, pred, conf = [], [], [], []
    with open(folder / "predictions.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("true") in index and row.get("predicted") in index:
                paths.append(row["path"])
                true.append(index[row["true"]])
                pred.append(index[row["predicted"]])
                conf.append(float(row.get("prob") or "nan"))
    source = (f"graft evaluate outputs in {folder} (split {metrics.get('split', '?')}, "
              f"{len(paths)} images)")  # fmt: skip
    return Predictions(classes, paths, np.array(true, int), np.array(pred, int),
                       np.array(conf, float), metrics, source)  # fmt: skip


def compute_predictions(
    bundle: Any, samples: list[tuple[str, int]], split: str, max_images: int, seed: int = 0
) -> Predictions:
    """Run ``bundle`` on at most ``max_images`` of ``samples`` (labels index ``bundle.classes``).

    Example:
        >>> preds = compute_predictions(load_bundle("runs/x/bundle"), splits.val, "val", 256)  # doctest: +SKIP
    """
    from graft.inference.metrics import classification_metrics
    from graft.inference.runner import run_inference

    chosen = bounded(samples, max_images, seed)
    if not chosen:
        raise MissingPiece(f"the {split} split has no images to predict")
    out = run_inference(bundle, [p for p, _ in chosen], batch_size=32)
    if not out.index:
        raise MissingPiece(f"none of the {len(chosen)} {split} images could be read")
    true = np.array([chosen[i][1] for i in out.index], int)
    classes = list(bundle.classes)
    metrics = classification_metrics(true, out.probs, classes, top_k=(1, min(5, len(classes))))
    pred = out.probs.argmax(axis=1)
    source = (f"computed with the bundle on {len(out.index)} of {len(samples)} {split} images "
              "(no graft evaluate outputs found)")  # fmt: skip
    notes = [f"{len(out.failed)} image(s) could not be read"] if out.failed else []
    return Predictions(classes, [chosen[i][0] for i in out.index], true, pred,
                       out.probs[np.arange(len(pred)), pred].astype(float), metrics, source, notes)  # fmt: skip


def bounded(samples: list[Any], limit: int, seed: int = 0) -> list[Any]:
    """``samples`` when at most ``limit``, else a seeded random subset of ``limit`` in original order.

    Example:
        >>> bounded(list(range(10)), 3, seed=0)
        [0, 6, 9]
    """
    if len(samples) <= limit:
        return list(samples)
    keep = sorted(random.Random(seed).sample(range(len(samples)), max(limit, 0)))
    return [samples[i] for i in keep]
