"""Features: extraction, the feature store, scikit-learn probes and the frozen-prefix cache.

Example:
    >>> import graft
    >>> f = graft.extract("data/pets", model="efficientnet_lite0", image_size=128)  # doctest: +SKIP
    >>> result = graft.probe(f, clf="logreg")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.features.arrays import Features
from graft.features.extract import extract
from graft.features.layers import LayerReader

__all__ = ["Features", "LayerReader", "extract"]
