"""``evaluate``: a bundle's accuracy, balanced accuracy, top-k, per-class scores and confusion matrix.

``data`` is an ImageFolder (every image is evaluated), a folder with ``train/``/``val/``/``test/``
(``split`` picks one, ``test`` by default) or a ``path,label`` CSV. Its class names must be among the
bundle's; images of unknown classes stop the evaluation before any work, naming them.

Files written to ``out`` (each atomically, ``metrics.json`` last): ``metrics.json``,
``per_class.csv``, ``confusion_matrix.csv``, ``confusion_matrix.png``, ``predictions.csv`` (path, true,
predicted, prob, correct), when images were skipped ``skipped.tsv``, and, for a bundle inside a
``graft fit`` run folder, the run's HTML report on this evaluation, ``report.html``.

Example:
    >>> result = evaluate("runs/pets/bundle", "data/pets", split="test", out="runs/pets/eval")  # doctest: +SKIP
    >>> round(result.accuracy, 3), result.top_k_accuracy["5"]  # doctest: +SKIP
    (0.942, 0.998)
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graft.bundle import Bundle
from graft.data.scan import SPLIT_NAMES, Sample, scan_dataset
from graft.distributed import is_rank_zero
from graft.errors import ConfigError, DataError, suggest
from graft.inference.metrics import classification_metrics
from graft.inference.parallel import infer_files, prepare
from graft.inference.plots import plot_confusion
from graft.io import write_json, write_text
from graft.log import get_logger

log = get_logger("graft.inference")
SPLITS = ("test", "val", "train", "all")


@dataclass
class EvalResult:
    """Metrics of one evaluation; ``metrics`` is what ``metrics.json`` holds."""

    metrics: dict[str, Any]
    classes: list[str]
    y_true: np.ndarray
    probs: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    out: Path | None = None

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    @property
    def balanced_accuracy(self) -> float:
        return self.metrics["balanced_accuracy"]

    @property
    def top_k_accuracy(self) -> dict[str, float]:
        return self.metrics["top_k_accuracy"]

    @property
    def confusion_matrix(self) -> np.ndarray:
        return np.asarray(self.metrics["confusion_matrix"])

    def summary(self) -> str:
        """One line for the terminal."""
        tops = ", ".join(f"top-{k} {v:.4f}" for k, v in self.top_k_accuracy.items() if k != "1")
        text = f"{self.metrics['n']} images: accuracy {self.accuracy:.4f}, balanced accuracy {self.balanced_accuracy:.4f}"
        return (
            text
            + (f", {tops}" if tops else "")
            + (f" ({len(self.skipped)} skipped)" if self.skipped else "")
        )


def evaluate(
    bundle: Bundle | str | os.PathLike,
    data: str | os.PathLike,
    split: str = "test",
    tta: bool = False,
    out: str | os.PathLike | None = None,
    top_k: int = 5,
    batch_size: int = 64,
    workers: int = 0,
    report: bool = True,
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    num_nodes: int = 1,
    device: str | None = None,
) -> EvalResult:
    """Evaluate ``bundle`` on ``data`` (see the module docstring); write reports to ``out`` if given.

    With ``out`` and ``report``, a bundle that sits in a ``graft fit`` run folder also gets the run's
    HTML report built on this evaluation, as ``out/report.html`` (by the reporter that
    :mod:`graft.report` installs, :mod:`graft.train.reporters`).

    Example:
        >>> r = evaluate("bundle", "data/animals", tta=True)  # doctest: +SKIP
        >>> r.summary()  # doctest: +SKIP
        '1000 images: accuracy 0.9410, balanced accuracy 0.9405, top-5 0.9990'
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; valid: {', '.join(SPLITS)}")
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    bundle, hw = prepare(bundle, accelerator, devices, device, strategy, num_nodes)
    samples, skipped = select_samples(data, split, bundle.classes)
    paths = [p for p, _ in samples]
    result = infer_files(bundle, paths, hw, batch_size=batch_size, tta=tta, workers=workers)
    skipped += [(paths[i], reason) for i, reason in sorted(result.failed.items())]
    if not result.index:
        raise DataError(
            f"none of the {len(paths)} images in {data} could be read; see the skipped list."
        )
    y_true = np.array([samples[i][1] for i in result.index])
    metrics = classification_metrics(
        y_true, result.probs, bundle.classes, top_k=(1, min(top_k, bundle.num_classes))
    )
    metrics.update(
        {
            "data": os.fspath(data),
            "split": split,
            "tta": tta,
            "skipped": len(skipped),
            "bundle": os.fspath(bundle.path),
        }
    )
    evaluation = EvalResult(
        metrics,
        list(bundle.classes),
        y_true,
        result.probs,
        [paths[i] for i in result.index],
        skipped,
    )
    if out is not None and is_rank_zero():  # under torchrun every rank has the result; one writes
        evaluation.out = write_report(evaluation, out)
        if report:
            write_run_report(bundle.path, evaluation.out)
    log.info("evaluation: %s", evaluation.summary())
    return evaluation


def write_run_report(bundle_dir: Path, out: Path) -> Path | None:
    """``out/report.html``: the HTML report of the run that holds ``bundle_dir``, on this evaluation.

    Nothing when the bundle is not inside a run folder (no ``config.yaml`` beside it); a failure is
    logged, never raised.
    """
    run_dir = Path(bundle_dir).parent
    if not (run_dir / "config.yaml").is_file():
        return None
    from graft.train import reporters  # graft.report installs the reporter

    return reporters.write_run_report(run_dir, out=out / "report.html", evaluation=out)


def select_samples(
    data: str | os.PathLike, split: str, classes: list[str]
) -> tuple[list[Sample], list[tuple[str, str]]]:
    """The ``(path, bundle label)`` samples of ``split`` in ``data``, and the files skipped while scanning."""
    splits = scan_dataset(data)
    if split == "all" or not _has_split_folders(Path(data)):
        chosen = splits.all_samples()
        if split not in ("all", "test"):
            log.warning(
                "%s has no split folders: evaluating all %d images (--split %s ignored)",
                data,
                len(chosen),
                split,
            )
    else:
        chosen = getattr(splits, split)
        if not chosen:
            counts = {s: len(getattr(splits, s)) for s in ("train", "val", "test")}
            raise DataError(
                f"{data} has no '{split}' images (images per split: {counts}). "
                "Pass --split with one that has images, e.g. --split val."
            )
    mapping = _class_mapping(splits.classes, classes, data)
    return [(p, mapping[y]) for p, y in chosen], list(splits.skipped)


def _has_split_folders(root: Path) -> bool:
    return root.is_dir() and any((root / name).is_dir() for name in SPLIT_NAMES)


def _class_mapping(data_classes: list[str], bundle_classes: list[str], data: Any) -> dict[int, int]:
    index = {c: i for i, c in enumerate(bundle_classes)}
    unknown = [c for c in data_classes if c not in index]
    if unknown:
        hints = [
            f"{c!r} (did you mean {', '.join(map(repr, suggest(c, bundle_classes)))}?)"
            if suggest(c, bundle_classes)
            else repr(c)
            for c in unknown[:10]
        ]
        raise DataError(
            f"{data} has classes the model does not know: {', '.join(hints)}. "
            f"The model's classes: {', '.join(bundle_classes[:30])}. "
            "Rename those folders/labels to the model's class names or remove them."
        )
    return {i: index[c] for i, c in enumerate(data_classes)}


def write_report(result: EvalResult, out: str | os.PathLike) -> Path:
    """Write metrics, per-class scores, confusion matrix (CSV, PNG) and predictions to ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out must be a folder; '{out}' is a file")
    classes = result.classes
    write_text(out / "per_class.csv", _per_class_csv(result.metrics["per_class"]))
    write_text(
        out / "confusion_matrix.csv", _confusion_csv(result.metrics["confusion_matrix"], classes)
    )
    plot_confusion(result.metrics["confusion_matrix"], classes, out / "confusion_matrix.png")
    write_text(out / "predictions.csv", _predictions_csv(result))
    if result.skipped:
        write_text(
            out / "skipped.tsv",
            "path\treason\n" + "".join(f"{p}\t{r}\n" for p, r in result.skipped),
        )
    write_json(out / "metrics.json", result.metrics)
    return out


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _per_class_csv(per_class: list[dict[str, Any]]) -> str:
    keys = ["class", "precision", "recall", "f1", "support"]
    return _csv([keys] + [[row[k] for k in keys] for row in per_class])


def _confusion_csv(matrix: list[list[int]], classes: list[str]) -> str:
    return _csv(
        [["true \\ predicted", *classes]]
        + [[c, *row] for c, row in zip(classes, matrix, strict=True)]
    )


def _predictions_csv(result: EvalResult) -> str:
    pred = result.probs.argmax(axis=1)
    rows = [["path", "true", "predicted", "prob", "correct"]]
    for path, t, p, probs in zip(result.paths, result.y_true, pred, result.probs, strict=True):
        rows.append([path, result.classes[t], result.classes[p], f"{probs[p]:.6f}", int(t == p)])
    return _csv(rows)
