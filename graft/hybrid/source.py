"""``graft.hybrid`` as a model source: ``graft.models.create_model("a+b", ...)`` builds a hybrid.

:mod:`graft.hybrid` registers :func:`create_from_name` for the marker ``"+"`` with
:mod:`graft.models.sources` when it is imported, so ``graft.models`` (a lower layer) never imports
it; the registry imports this package by name on the first ``+`` name.

Example:
    >>> from graft.models import create_model
    >>> model = create_model("test_efficientnet+test_vit", num_classes=3, pretrained=False)
    >>> type(model).__name__
    'HybridModel'
"""

from __future__ import annotations

import os
from typing import Any

from graft.hybrid.factory import create_hybrid
from graft.hybrid.model import HybridModel
from graft.models.sources import register_source


def create_from_name(
    name: str,
    num_classes: int | None = None,
    pretrained: bool = True,
    in_chans: int = 3,
    head: str | dict[str, Any] = "linear",
    weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> HybridModel:
    """:func:`create_hybrid` with :func:`graft.models.create_model`'s arguments (defaults dropped).

    Example:
        >>> create_from_name("test_resnet+test_vit", num_classes=2, pretrained=False)  # doctest: +SKIP
    """
    extra = dict(kwargs)
    if in_chans != 3:
        extra["in_chans"] = in_chans
    if head != "linear":
        extra["head"] = head
    if weights is not None:
        extra["weights"] = weights
    return create_hybrid(name, num_classes=num_classes, pretrained=pretrained, **extra)


def register() -> None:
    """Make ``"+"`` in a model name mean a hybrid (called when :mod:`graft.hybrid` is imported)."""
    register_source("+", create_from_name)
