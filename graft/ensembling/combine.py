"""``combine_members``: trained member bundles -> one ``ensemble`` bundle and its val/test accuracy.

The combine step of ``graft fit --preset best`` (:mod:`graft.ensembling.best`), public so that
bundles trained elsewhere (a benchmark's member fits) are combined by exactly the same code:

1. :func:`graft.ensemble` writes ``OUT/bundle``; the member weights are chosen on the validation
   split (greedy selection on the log-loss, members left at 0 are dropped) or are all equal:
   :data:`ENSEMBLE_WEIGHTS` (``"val"`` or ``"equal"``) or the ``weights`` argument.
2. The ensemble bundle is run over the validation and test splits of ``data``, carved with the
   ``val_split`` and ``seed`` the members were fit with (what ``graft fit`` holds out), through
   the same code as ``graft predict`` (:func:`graft.inference.runner.run_inference`); with
   ``tta`` also with each image and its mirror averaged (``val_acc_tta``, ``test_acc_tta``).

Example:
    >>> r = combine_members(["runs/a/bundle", "runs/b/bundle"], "data/pets", "runs/ens", seed=0)  # doctest: +SKIP
    >>> r.metrics["test_acc"], r.ensemble.weights  # doctest: +SKIP
    (0.94, [0.6, 0.4])
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graft.bundle import Bundle, load_bundle
from graft.data.scan import scan_dataset
from graft.distributed import single_device
from graft.ensembling.api import EnsembleResult, ensemble
from graft.errors import ConfigError, DataError
from graft.log import get_logger

log = get_logger("graft.ensembling")

# how preset best weighs its members: "val" (chosen on the validation split) or "equal". Equal:
# in the 3-seed quality benchmark (docs/benchmarks/quality.md) weights chosen on 200 validation
# images beat equal weights on the test images in 2 of 12 ensembles (by 0.1-0.2 points), tied in
# 3 and lost in 7 (by 0.1-1.1 points).
ENSEMBLE_WEIGHTS = "equal"
WEIGHTINGS = ("val", "equal")


@dataclass
class CombinedMembers:
    """The ensemble bundle, its accuracies (``val_acc``, ``test_acc``, ``*_tta``, ``combine_seconds``)
    and what :func:`graft.ensemble` chose (members kept, weights, dropped, selection)."""

    bundle: Path
    metrics: dict[str, float]
    ensemble: EnsembleResult
    weighting: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``bundle``, ``metrics``, ``weighting`` and the ensemble's record."""
        return {
            "bundle": os.fspath(self.bundle),
            "metrics": self.metrics,
            "weighting": self.weighting,
            **self.ensemble.to_dict(),
        }


def combine_members(
    bundles: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    out: str | os.PathLike,
    seed: int = 0,
    tta: bool = True,
    *,
    val_split: float = 0.1,
    weights: str | None = None,
    batch_size: int = 64,
    workers: int = 0,
    accelerator: str = "auto",
) -> CombinedMembers:
    """Write ``out/bundle``, the ensemble of ``bundles``, and measure it; see the module docstring.

    ``weights``: ``"val"`` or ``"equal"`` (default: :data:`ENSEMBLE_WEIGHTS`, read at call time).

    Example:
        >>> combine_members(["a/bundle", "b/bundle"], "data", "runs/ens", weights="equal").weighting  # doctest: +SKIP
        'equal'
    """
    started = time.perf_counter()
    weighting = weights or ENSEMBLE_WEIGHTS
    if weighting not in WEIGHTINGS:
        raise ConfigError(
            f"ensemble weights {weighting!r} are not one of {', '.join(WEIGHTINGS)}: 'val' chooses "
            "them on the validation split, 'equal' gives every member the same weight."
        )
    result = ensemble(
        list(bundles), data=data if weighting == "val" else None, out=Path(out) / "bundle",
        val_split=val_split, seed=seed, batch_size=batch_size, workers=workers,
        accelerator=accelerator,
    )  # fmt: skip
    log.info("%s", result.summary())
    device = single_device(accelerator, 1, None, what="ensemble")
    metrics = split_accuracies(load_bundle(result.path, device=device), data, val_split, seed,
                               tta, batch_size, workers)  # fmt: skip
    metrics["combine_seconds"] = round(time.perf_counter() - started, 2)
    return CombinedMembers(result.path, metrics, result, weighting)


def split_accuracies(
    bundle: Bundle,
    data: str | os.PathLike,
    val_split: float = 0.1,
    seed: int = 0,
    tta: bool = False,
    batch_size: int = 64,
    workers: int = 0,
) -> dict[str, float]:
    """``val_acc`` / ``test_acc`` of ``bundle`` on the splits ``graft fit`` makes of ``data`` (and
    ``*_acc_tta`` with ``tta``); a split with no images is left out.

    Example:
        >>> split_accuracies(load_bundle("runs/ens/bundle"), "data/pets", tta=True)  # doctest: +SKIP
        {'val_acc': 0.93, 'val_acc_tta': 0.94, 'test_acc': 0.92, 'test_acc_tta': 0.93}
    """
    from graft.inference.runner import run_inference

    splits = scan_dataset(data, val_split=val_split or None, seed=seed)
    if splits.classes != list(bundle.classes):
        raise DataError(
            f"{data} has classes {splits.classes[:8]} but {bundle.path} predicts "
            f"{list(bundle.classes)[:8]}; measure the ensemble on the data its members were fit on."
        )
    out: dict[str, float] = {}
    for name, samples in (("val", splits.val), ("test", splits.test)):
        if not samples:
            continue
        labels = np.array([y for _, y in samples])
        for flipped in (False, True) if tta else (False,):
            found = run_inference(bundle, [p for p, _ in samples], batch_size, flipped, workers)
            if not found.index:
                raise DataError(f"none of the {len(samples)} {name} images of {data} could be read")
            hits = found.probs.argmax(axis=1) == labels[found.index]
            out[f"{name}_acc" + ("_tta" if flipped else "")] = round(float(hits.mean()), 6)
    return out


__all__ = ["ENSEMBLE_WEIGHTS", "CombinedMembers", "combine_members", "split_accuracies"]
