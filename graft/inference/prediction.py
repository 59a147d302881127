"""``predict``: top-k classes and probabilities for image files, folders or globs, batched.

Bad files (unreadable, truncated, not images, missing) are reported in ``.skipped`` and a warning,
and every other image is predicted. Works with any bundle kind (PyTorch, probe, ONNX).

Example:
    >>> preds = predict("runs/pets/bundle", ["photos/", "extra/*.jpg"], top_k=3)  # doctest: +SKIP
    >>> preds[0]["label"], preds[0]["prob"]  # doctest: +SKIP
    ('cat', 0.97)
    >>> write_predictions(preds, "preds.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graft.bundle import Bundle
from graft.errors import ConfigError, DataError
from graft.inference.inputs import expand_paths
from graft.inference.parallel import infer_files, prepare
from graft.io import write_json, write_text
from graft.log import get_logger
from graft.names import escape_name

log = get_logger("graft.inference")
OUTPUT_FORMATS = (".csv", ".json")


class Predictions(list):
    """A list of prediction dicts, with ``skipped``: ``(path, reason)`` for inputs not predicted."""

    def __init__(
        self, rows: list[dict[str, Any]], skipped: list[tuple[str, str]], classes: list[str]
    ) -> None:
        super().__init__(rows)
        self.skipped = skipped
        self.classes = classes


def predict(
    bundle: Bundle | str | os.PathLike,
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    top_k: int = 5,
    batch_size: int = 64,
    tta: bool = False,
    workers: int = 0,
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    num_nodes: int = 1,
    device: str | None = None,
) -> Predictions:
    """Predict every image in ``paths`` (files, folders searched recursively, globs).

    Each row: ``{"path", "label", "prob", "top_k": [{"label", "prob"}, ...]}`` with ``top_k``
    entries sorted by probability (capped at the number of classes). ``workers`` > 0 decodes images
    in that many processes (the skip reasons then read "unreadable"). ``accelerator`` /
    ``devices`` as in Lightning: ``accelerator="cpu", devices=2`` predicts in two processes, each a
    shard of the images (:mod:`graft.inference.parallel`); the result is the one of one process.

    Example:
        >>> preds = predict("bundle", "photos/", top_k=2)  # doctest: +SKIP
        >>> preds.skipped  # doctest: +SKIP
        [('photos/broken.jpg', 'truncated')]
    """
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    bundle, hw = prepare(bundle, accelerator, devices, device, strategy, num_nodes)
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files, skipped = expand_paths(items)
    if not files:
        raise DataError(
            f"no images to predict in {[os.fspath(p) for p in items][:5]} ({skipped[:3]}). "
            "Give image files, folders or globs such as 'photos/*.jpg'."
        )
    out = infer_files(bundle, files, hw, batch_size=batch_size, tta=tta, workers=workers)
    skipped += [(files[i], reason) for i, reason in sorted(out.failed.items())]
    rows = [
        _row(files[i], p, bundle.classes, top_k) for i, p in zip(out.index, out.probs, strict=True)
    ]
    if not rows:
        shown = "; ".join(f"{escape_name(p)} ({r})" for p, r in skipped[:3])
        raise DataError(
            f"none of the {len(skipped)} input(s) could be read, so nothing was predicted "
            f"(e.g. {shown}). Check that they are image files (.jpg .png ...) you can read."
        )
    if skipped:
        log.warning("skipped %d of %d input(s) that could not be read", len(skipped),
                    len(skipped) + len(rows))  # fmt: skip
    return Predictions(rows, skipped, list(bundle.classes))


def _row(path: str, probs: np.ndarray, classes: Sequence[str], top_k: int) -> dict[str, Any]:
    order = np.argsort(-probs, kind="stable")[: min(top_k, len(classes))]
    top = [{"label": classes[j], "prob": float(probs[j])} for j in order]
    return {"path": path, "label": top[0]["label"], "prob": top[0]["prob"], "top_k": top}


def write_predictions(preds: Predictions, out: str | os.PathLike) -> Path:
    """Write predictions as CSV (one row per image, top-k columns) or JSON (with ``skipped``).

    Example:
        >>> write_predictions(predict("bundle", "photos/"), "preds.json")  # doctest: +SKIP
    """
    out = Path(out)
    if out.is_dir():
        raise ConfigError(
            f"--out {out} is a folder; predictions go to a file such as {out / 'preds.csv'}."
        )
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ConfigError(
            f"--out must end in {' or '.join(OUTPUT_FORMATS)}, got '{out}'. Example: --out preds.csv"
        )
    if suffix == ".json":
        skipped = [{"path": p, "reason": r} for p, r in preds.skipped]
        write_json(out, {"classes": preds.classes, "predictions": list(preds), "skipped": skipped})
    else:
        write_text(out, predictions_csv(preds))
        if preds.skipped:
            lines = "".join(f"{escape_name(p)}\t{escape_name(r)}\n" for p, r in preds.skipped)
            write_text(out.with_suffix(".skipped.tsv"), "path\treason\n" + lines)
    return out


def predictions_csv(preds: Predictions) -> str:
    """CSV text: ``path,label,prob,top1_label,top1_prob,...``."""
    k = max((len(r["top_k"]) for r in preds), default=1)
    header = ["path", "label", "prob"]
    for i in range(1, k + 1):
        header += [f"top{i}_label", f"top{i}_prob"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in preds:
        cells = [r["path"], r["label"], f"{r['prob']:.6f}"]
        for t in r["top_k"]:
            cells += [t["label"], f"{t['prob']:.6f}"]
        writer.writerow(cells)
    return buf.getvalue()
