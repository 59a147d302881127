"""Inference: predict, evaluate, and the scikit-learn style :class:`ImageClassifier`.

Example:
    >>> from graft.inference import predict, evaluate
    >>> preds = predict("runs/pets/bundle", "photos/")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "predict": "graft.inference.prediction",
    "write_predictions": "graft.inference.prediction",
    "Predictions": "graft.inference.prediction",
    "evaluate": "graft.inference.evaluation",
    "EvalResult": "graft.inference.evaluation",
    "ImageClassifier": "graft.inference.classifier",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'graft.inference' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
