"""Knowledge distillation: train a small student from a teacher with graft fit's machinery.

Example:
    >>> from graft.distill import distill  # doctest: +SKIP
    >>> r = distill("data/pets", teacher="runs/big/bundle", student="efficientnet_lite0", out="runs/kd")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import lazy_exports

_API = {
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
