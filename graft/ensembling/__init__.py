"""Ensembles of trained bundles as one bundle (``kind="ensemble"``): probability averaging with
member weights chosen on a validation split; predict, evaluate, export and serve read it like any
other bundle. ``graft fit --preset best`` fits an ensemble (``--model``, its longer twin, named backbones)
(:mod:`graft.ensembling.best`, installed into ``graft.train`` when imported) and combines them with
:func:`combine_members`.

Example:
    >>> from graft.ensembling import ensemble
    >>> ensemble(["runs/a/bundle", "runs/b/bundle"], data="data/pets", out="runs/ens")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import lazy_exports

_API = {
    "ensemble": "graft.ensembling.api",
    "EnsembleResult": "graft.ensembling.api",
    "EnsembleModel": "graft.ensembling.model",
    "choose_weights": "graft.ensembling.weights",
    "save_ensemble_bundle": "graft.ensembling.storage",
    "load_ensemble_bundle": "graft.ensembling.storage",
    "combine_members": "graft.ensembling.combine",
    "CombinedMembers": "graft.ensembling.combine",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
