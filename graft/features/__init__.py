"""Features: extraction, the feature store, scikit-learn probes and the frozen-prefix cache.

Importing this package registers the ``probe`` bundle kind with :mod:`graft.bundle`.

Example:
    >>> import graft
    >>> f = graft.extract("data/pets", model="efficientnet_lite0", image_size=128)  # doctest: +SKIP
    >>> result = graft.probe(f, clf="logreg")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.features import probe_bundle as _probe_bundle  # noqa: F401  (registers kind "probe")
from graft.features.arrays import Features
from graft.features.extraction import extract
from graft.features.layers import LayerReader
from graft.features.probe_api import ProbeResult, probe
from graft.features.probing import CLASSIFIERS, Probe

__all__ = ["CLASSIFIERS", "Features", "LayerReader", "Probe", "ProbeResult", "extract", "probe"]
