"""Model selection: which backbone for my data and latency budget, measured on my data and machine.

Example:
    >>> from graft.select import select_models  # doctest: +SKIP
    >>> result = select_models("data/pets", available=True, latency_budget_ms=20, out="runs/select")  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import deprecated_call
from graft.select.api import fit_command, select, select_models
from graft.select.cost import Cost, measure_cost
from graft.select.profile import DatasetProfile, dataset_profile
from graft.select.result import SelectionResult, pareto_front
from graft.select.rules import RuleSet, load_rules
from graft.select.scores import hscore, leep, logme, nce

__all__ = [
    "Cost",
    "DatasetProfile",
    "RuleSet",
    "SelectionResult",
    "dataset_profile",
    "fit_command",
    "hscore",
    "leep",
    "load_rules",
    "logme",
    "measure_cost",
    "nce",
    "pareto_front",
    "select",
    "select_models",
]

deprecated_call(__name__, "select_models", "graft.select_models")
