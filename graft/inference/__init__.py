"""Inference: predict, evaluate, and the scikit-learn style :class:`ImageClassifier`.

Example:
    >>> from graft.inference import predict, evaluate
    >>> preds = predict("runs/pets/bundle", "photos/")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import lazy_exports

_API = {
    "predict": "graft.inference.prediction",
    "write_predictions": "graft.inference.prediction",
    "Predictions": "graft.inference.prediction",
    "evaluate": "graft.inference.evaluation",
    "EvalResult": "graft.inference.evaluation",
    "ImageClassifier": "graft.inference.classifier",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
