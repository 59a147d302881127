"""``--preset fast|balanced|best``: named bundles of options, applied before the others.

- ``fast``: a linear probe (logistic regression, C chosen by cross-validation) on the frozen
  backbone's pooled features (:func:`graft.probe`), saved as a ``probe`` bundle: no gradient step.
  The features come from the last stage or the one before it, whichever has the better
  cross-validated accuracy (``layer="auto"``, :mod:`graft.features.probe_layers`).
- ``balanced``: recipe ``auto`` (head, then everything with spread learning rates), today's default.
- ``best``: ``auto`` + test-time augmentation in the reported accuracies + an ensemble:
  ``--model``'s ``auto`` fit averaged with its members, ``--ensemble-models`` (default ``long``:
  ``--model`` again with 3x the epochs after the head phase; backbone names add other backbones),
  each fit into ``OUT/members/NAME/`` and combined into one ``ensemble`` bundle, ``OUT/bundle``
  (:mod:`graft.ensembling.best`, which installs itself here with :func:`set_best_runner`:
  ``graft.train`` sits below :mod:`graft.ensembling` and never imports it). Weight averaging
  (:data:`AVERAGE_IN_BEST`) and WiSE-FT (:data:`WISE_IN_BEST`) join each member's fit when the
  benchmark says they help.

Options given explicitly (keyword arguments, flags, values of a ``--config`` file that differ from
the defaults) win over the preset's. The measured cost of each preset is in
docs/benchmarks/quality.md.

Example:
    >>> with_preset({"preset": "best", "average": "swa"}, explicit={"average"})["average"]
    'swa'
    >>> with_preset({"preset": "best"}, explicit=set())["tta"]
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graft.errors import ConfigError, raise_unknown
from graft.io import write_json

# docs/benchmarks/quality.md, 3 seeds: WiSE-FT -0.9 points on animals, 0.0 on digits
WISE_IN_BEST = False
# --average of each member of best ("none", "swa", "top-k", "greedy-soup"); docs/benchmarks/quality.md,
# 3 seeds: swa and top-k -0.6 points on animals, the greedy soup 0.0, all 0.0 on digits
AVERAGE_IN_BEST = "none"
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {},  # the probe path: graft.train.fitting.fit_fast
    "balanced": {"recipe": "auto"},
    "best": {"recipe": "auto", "average": AVERAGE_IN_BEST, "wise": WISE_IN_BEST, "tta": True},
}
# preset best's ensemble runner: (cfg, begun, **fit hooks) -> FitResult; installed by
# graft.ensembling.best when imported (graft.fit and the command line import it)
BestRunner = Callable[..., Any]
_best_runner: BestRunner | None = None


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


def set_best_runner(runner: BestRunner | None) -> BestRunner | None:
    """Install ``preset="best"``'s ensemble runner (``None``: none); returns the one it replaces.

    Example:
        >>> import graft.ensembling.best  # installs graft.ensembling.best.fit_best  # doctest: +SKIP
    """
    global _best_runner
    previous, _best_runner = _best_runner, runner
    return previous


def fit_best(cfg: Any, begun: float, **hooks: Any) -> Any:
    """``preset="best"`` with an ensemble: the installed runner fits the members and combines them.

    ``hooks``: :func:`graft.train.fitting.fit`'s ``callbacks``, ``module_factory``, ``on_trained``.

    Example:
        >>> fit("data/pets", preset="best", out="runs/best").bundle  # doctest: +SKIP
        PosixPath('runs/best/bundle')
    """
    if _best_runner is None:
        raise ConfigError(
            "preset 'best' fits an ensemble, which needs graft.ensembling: call "
            "graft.fit (or `graft fit`), or `import graft.ensembling.best` before "
            "graft.train.fit; or pass ensemble_models=[] to fit --model alone."
        )
    return _best_runner(cfg, begun, **hooks)
