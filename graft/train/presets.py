"""``--preset fast|balanced|best``: named bundles of options, applied before the others.

- ``fast``: a linear probe (logistic regression, C chosen by cross-validation) on the frozen
  backbone's pooled features (:func:`graft.probe`), saved as a ``probe`` bundle: no gradient step.
  The features come from the last stage or the one before it, whichever has the better
  cross-validated accuracy (``layer="auto"``, :mod:`graft.features.probe_layers`).
- ``balanced``: recipe ``auto`` (head, then everything with spread learning rates), today's default.
- ``best``: ``auto`` + greedy soup of the last phase's epochs + WiSE-FT when the benchmark says it
  helps (:data:`WISE_IN_BEST`) + test-time augmentation in the reported accuracies. An ensemble of
  backbones (``graft ensemble``) is the next lever and is not part of the preset yet: fit each
  backbone with ``--preset best`` and combine the bundles with ``graft ensemble``.

Options given explicitly (keyword arguments, flags, values of a ``--config`` file that differ from
the defaults) win over the preset's. The measured cost of each preset is in
docs/benchmarks/quality.md.

Example:
    >>> with_preset({"preset": "best", "average": "swa"}, explicit={"average"})["average"]
    'swa'
    >>> with_preset({"preset": "best"}, explicit=set())["average"]
    'greedy-soup'
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from graft.errors import ConfigError, raise_unknown
from graft.io import write_json

WISE_IN_BEST = False  # docs/benchmarks/quality.md: WiSE-FT did not beat auto on average
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {},  # the probe path: graft.train.fitting.fit_fast
    "balanced": {"recipe": "auto"},
    "best": {"recipe": "auto", "average": "greedy-soup", "wise": WISE_IN_BEST, "tta": True},
}


def with_preset(options: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
    """``options`` with the preset's values filled in where the option is not in ``explicit``."""
    name = options.get("preset")
    if name is None:
        return options
    if name not in PRESETS:
        raise_unknown("preset", name, tuple(PRESETS))
    return {**options, **{k: v for k, v in PRESETS[name].items() if k not in explicit}}


def explicit_keys(
    base: dict[str, Any], defaults: dict[str, Any], options: dict[str, Any]
) -> set[str]:
    """Options set on purpose: non-``None`` ``options`` and ``base`` values that differ from ``defaults``.

    Example:
        >>> sorted(explicit_keys({"epochs": 3, "lr": None}, {"epochs": None, "lr": None}, {"seed": 1}))
        ['epochs', 'seed']
    """
    given = {k for k, v in options.items() if v is not None}
    return given | {k for k, v in base.items() if k in defaults and v != defaults[k]}


def probe_options(cfg: Any) -> dict[str, Any]:
    """:func:`graft.probe` keyword arguments for ``preset="fast"`` from a :class:`FitConfig`.

    Example:
        >>> from graft.train.config import FitConfig
        >>> probe_options(FitConfig(data="d", preset="fast", out="runs/x"))["out"]
        'runs/x/bundle'
    """
    return {
        "clf": "logreg", "layer": "auto", "model": cfg.model, "weights": cfg.weights, "image_size": cfg.image_size,
        "val_split": cfg.val_split or None, "seed": cfg.seed, "out": f"{cfg.out}/bundle",
        "batch_size": cfg.batch_size, "workers": cfg.workers, "accelerator": cfg.accelerator,
        "progress": cfg.progress,
    }  # fmt: skip


def fit_fast(cfg: Any, begun: float) -> Any:
    """``preset="fast"``: a linear probe on frozen features (:func:`graft.probe`), saved as
    ``out/bundle``; the training options of the other recipes do not apply.

    Example:
        >>> fit("data/pets", preset="fast", out="runs/fast").metrics["test_acc"]  # doctest: +SKIP
        0.88
    """
    from graft.features import probe
    from graft.train.fitting import FitResult

    run = Path(cfg.out)
    if (run / "bundle").exists():
        raise ConfigError(f"{run} already holds a run; choose another --out folder.")
    if cfg.dry_run:
        text = f"preset fast: logistic-regression probe on {cfg.model} features of {cfg.data}"
        return FitResult(run, run / "bundle", {}, config=cfg, plan_text=text)
    run.mkdir(parents=True, exist_ok=True)
    cfg.save(run / "config.yaml")
    result = probe(cfg.data, **probe_options(cfg))
    metrics = {"fit_seconds": round(time.perf_counter() - begun, 2)}
    for key, value in (("val_acc", result.val_accuracy), ("test_acc", result.test_accuracy),
                       ("cv_acc", result.cv_accuracy)):  # fmt: skip
        if value is not None:
            metrics[key] = round(float(value), 6)
    write_json(run / "metrics.json", {"metrics": metrics, "preset": "fast",
                                      "probe": result.metrics})  # fmt: skip
    return FitResult(run, result.bundle or run / "bundle", metrics, config=cfg)
