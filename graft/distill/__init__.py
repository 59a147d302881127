"""Knowledge distillation: train a small student from a teacher with graft fit's machinery.

Example:
    >>> from graft.distill import distill_model  # doctest: +SKIP
    >>> r = distill_model("data/pets", teacher="runs/big/bundle", student="efficientnet_lite0", out="runs/kd")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import deprecated_call, lazy_exports

_API = {
    "distill_model": "graft.distill.api",
    "distill": "graft.distill.api",
    "DistillResult": "graft.distill.api",
    "DistillConfig": "graft.distill.config",
    "Distiller": "graft.distill.distiller",
    "DistillModule": "graft.distill.module",
    "FeatureAdapter": "graft.distill.adapters",
    "FeatureTaps": "graft.distill.taps",
    "layer_names": "graft.distill.taps",
    "Teacher": "graft.distill.teacher",
    "kd_loss": "graft.distill.losses",
    "mse_loss": "graft.distill.losses",
    "cosine_loss": "graft.distill.losses",
    "attention_loss": "graft.distill.losses",
    "total_loss": "graft.distill.losses",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
deprecated_call(__name__, "distill_model", "graft.distill_model")
