"""Fine-tuning on Lightning: ``fit``, ``lr_find``, ``FitConfig``; recipes, schedules, unfreezing.

``evaluate``, ``predict`` and ``ImageClassifier`` live in :mod:`graft.inference` and are re-exported
here for convenience.

Example:
    >>> from graft.train import fit  # doctest: +SKIP
    >>> result = fit("data/pets", recipe="auto", out="runs/pets")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "fit": "graft.train.fitting",
    "FitResult": "graft.train.fitting",
    "FitConfig": "graft.train.config",
    "lr_find": "graft.train.lr_finder",
    "build_plan": "graft.train.recipes",
    "lr_at": "graft.train.schedules",
    "ProgressiveUnfreezing": "graft.train.unfreeze",
    "evaluate": "graft.inference",
    "predict": "graft.inference",
    "ImageClassifier": "graft.inference",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'graft.train' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
