"""Model sources beyond timm and torchvision, chosen by a marker in the model name.

A higher layer builds some names itself: :mod:`graft.hybrid` builds ``"a+b"`` (several backbones,
features fused). It registers its builder here with :func:`register_source` when it is imported;
:func:`graft.models.create_model` asks :func:`source_for` before parsing a timm/torchvision name.
So that ``create_model("a+b")`` works in a fresh interpreter, :data:`SOURCE_MODULES` names the
module that registers each marker, as a plain string: it is imported on the first such name, the
way ``graft/__init__.py`` imports its public names lazily. ``graft.models`` never imports the
higher layer in its code (the import contract in ``.importlinter`` checks that).

Example:
    >>> def identity(name, **options):
    ...     return nn.Identity()
    >>> register_source("*id", identity)
    >>> source_for("test_vit*id") is identity
    True
    >>> unregister_source("*id")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from graft.errors import ConfigError

# A builder takes create_model's arguments: (name, num_classes=, pretrained=, in_chans=, head=,
# weights=, **kwargs) and returns the model.
Builder = Callable[..., nn.Module]

# marker in a model name -> the module that registers its builder when it is imported
SOURCE_MODULES: dict[str, str] = {"+": "graft.hybrid"}

_BUILDERS: dict[str, Builder] = {}


def register_source(marker: str, builder: Builder) -> None:
    """Build every model name that contains ``marker`` with ``builder`` (last registration wins).

    Example:
        >>> register_source("+", create_hybrid_from_name)  # doctest: +SKIP
    """
    if not marker:
        raise ConfigError("a model source needs a non-empty marker (e.g. '+').")
    _BUILDERS[marker] = builder


def unregister_source(marker: str) -> None:
    """Forget the builder of ``marker`` (tests; a later name with it imports its module again)."""
    _BUILDERS.pop(marker, None)


def source_for(name: str) -> Builder | None:
    """The builder for ``name``, or ``None`` for a plain timm / torchvision name.

    Example:
        >>> source_for("resnet18") is None
        True
    """
    for marker in (*_BUILDERS, *SOURCE_MODULES):
        if marker not in name:
            continue
        if marker not in _BUILDERS:
            importlib.import_module(SOURCE_MODULES[marker])
        if marker not in _BUILDERS:
            raise ConfigError(
                f"model name {name!r} contains {marker!r}, whose builder "
                f"{SOURCE_MODULES[marker]!r} did not register; reinstall graft."
            )
        return _BUILDERS[marker]
    return None
