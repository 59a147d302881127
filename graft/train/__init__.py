"""Fine-tuning on Lightning: ``fit``, ``lr_find``, ``FitConfig``; recipes, schedules, unfreezing.

``evaluate``, ``predict`` and ``ImageClassifier`` live in :mod:`graft.inference` and are re-exported
here for convenience.

Example:
    >>> from graft.train import fit  # doctest: +SKIP
    >>> result = fit("data/pets", recipe="auto", out="runs/pets")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import lazy_exports

_API = {
    "fit": "graft.train.fitting",
    "FitResult": "graft.train.fitting",
    "FitParts": "graft.train.parts",
    "prepare_fit": "graft.train.parts",
    "default_module": "graft.train.parts",
    "module_options": "graft.train.parts",
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


__getattr__, __dir__ = lazy_exports(__name__, _API)
