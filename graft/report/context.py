"""What the report's sections share, loaded once and on demand: the run, its bundle, its dataset
(scanned as ``graft fit`` scanned it), and the predictions.

A piece that cannot be had raises :class:`graft.report.predictions.MissingPiece` with the reason,
which the section shows as a note.

Example:
    >>> ctx = ReportContext(read_run("runs/pets"), ReportOptions())  # doctest: +SKIP
    >>> ctx.predictions().source  # doctest: +SKIP
    'computed with the bundle on 60 of 60 val images (no graft evaluate outputs found)'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graft.errors import GraftError
from graft.report.collect import RunData
from graft.report.predictions import (
    MissingPiece,
    Predictions,
    compute_predictions,
    find_evaluation,
    load_evaluation,
)


@dataclass
class ReportOptions:
    """How much the report computes: Grad-CAM overlays, mistake thumbnails, images predicted when
    there is no evaluation, images decoded for the pixel statistics."""

    gradcam: int = 8
    mistakes: int = 12
    max_images: int = 256
    stats_images: int = 200
    evaluation: Path | None = None  # a `graft evaluate --out` folder; None: look inside the run


@dataclass
class ReportContext:
    run: RunData
    options: ReportOptions
    _cache: dict[str, Any] = field(default_factory=dict)

    def _once(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = make()
            except MissingPiece as e:
                self._cache[key] = e
        value = self._cache[key]
        if isinstance(value, MissingPiece):
            raise value
        return value

    def bundle(self) -> Any:
        """The run's bundle (:func:`graft.bundle.load_bundle`)."""
        return self._once("bundle", self._load_bundle)

    def splits(self) -> Any:
        """The training data scanned with the run's ``data``, ``val_split`` and ``seed``."""
        return self._once("splits", self._scan)

    def predictions(self) -> Predictions:
        """Evaluation outputs when there are some, else predictions on the validation split."""
        return self._once("predictions", self._predict)

    def predictions_or_note(self, notes: list[str]) -> Predictions | None:
        """:meth:`predictions`, or ``None`` with the reason added to ``notes`` (a section's notes).

        Example:
            >>> preds = ctx.predictions_or_note(section.notes)  # doctest: +SKIP
        """
        try:
            return self.predictions()
        except MissingPiece as e:
            notes.append(f"no predictions: {e}")
            return None

    # ------------------------------------------------------------------------------ loading

    def _load_bundle(self) -> Any:
        from graft.bundle import load_bundle

        if self.run.bundle_meta is None:
            raise MissingPiece(self.run.notes.get("bundle", "the run has no bundle"))
        try:
            return load_bundle(self.run.bundle_dir)
        except GraftError as e:
            raise MissingPiece(f"the bundle could not be loaded: {e}") from e

    def _scan(self) -> Any:
        from graft.data import scan_dataset

        data = self.run.config.get("data")
        if not data:
            raise MissingPiece("config.yaml names no data folder")
        if not Path(str(data)).exists():
            where = "" if Path(str(data)).is_absolute() else f" (relative to {Path.cwd()})"
            raise MissingPiece(f"the training data {data} is not there any more{where}")
        val_split = self.run.config.get("val_split") or None
        try:  # files fit skipped change the split: decode everything then, as fit did
            return scan_dataset(str(data), val_split=val_split, seed=int(self.run.config.get("seed") or 0),
                                verify=bool(self.run.skipped))  # fmt: skip
        except GraftError as e:
            raise MissingPiece(f"the training data {data} could not be scanned: {e}") from e

    def _predict(self) -> Predictions:
        folder = self.options.evaluation or find_evaluation(self.run.run_dir)
        if folder is not None:
            return load_evaluation(folder)
        bundle, splits = self.bundle(), self.splits()
        split = "val" if splits.val else "test"
        samples = splits.val or splits.test
        if not samples:
            raise MissingPiece("the run has no validation or test images and no evaluation outputs")
        index = {c: i for i, c in enumerate(bundle.classes)}
        known = [(p, index[splits.classes[y]]) for p, y in samples if splits.classes[y] in index]
        preds = compute_predictions(bundle, known, split, self.options.max_images,
                                    int(self.run.config.get("seed") or 0))  # fmt: skip
        if len(known) < len(samples):
            preds.notes.append(
                f"{len(samples) - len(known)} image(s) of classes the model does not know were left out"
            )
        return preds
