"""The registry of bundle kinds: ``kind`` in ``model.json`` -> the loader that reads the folder.

Every kind registers explicitly with :func:`register_kind` (a kind registered twice by different
loaders is an error). A kind whose loader lives in a package above the bundle layer is listed in
``PLUGINS`` with the module that registers it on import, so that ``load_bundle`` can read every
built-in kind without ``graft.bundle`` importing those packages:

=============  ==============================  =====================================
kind           registered by                   written by
=============  ==============================  =====================================
classifier     graft.bundle.loading            graft fit, graft distill
probe          graft.features.probe_bundle     graft probe
onnx           graft.export.runtime            graft export
torchscript    graft.export.runtime            graft export --format torchscript
ensemble       graft.ensembling.storage        graft ensemble
=============  ==============================  =====================================

Example:
    >>> "ensemble" in registered_kinds()
    True
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graft.errors import raise_unknown

Loader = Callable[[Path, dict, str], Any]  # (folder, meta, device) -> graft.bundle.Bundle
_LOADERS: dict[str, Loader] = {}

PLUGINS = {
    "classifier": "graft.bundle.loading",
    "probe": "graft.features.probe_bundle",
    "onnx": "graft.export.runtime",
    "torchscript": "graft.export.runtime",
    "ensemble": "graft.ensembling.storage",
}


def register_kind(kind: str, loader: Loader) -> None:
    """Register ``loader(path, meta, device) -> Bundle`` for bundles whose model.json says ``kind``.

    The loader is called after the format, version and file checksums are verified. Registering
    the same kind twice is an error (no silent overwrite).

    Example:
        >>> register_kind("my-kind", lambda path, meta, device: ...)  # doctest: +SKIP
    """
    if kind in _LOADERS and _LOADERS[kind] is not loader:
        raise ValueError(f"bundle kind '{kind}' is already registered by {_LOADERS[kind]!r}")
    _LOADERS[kind] = loader


def registered_kinds() -> list[str]:
    """Names of the bundle kinds that :func:`graft.bundle.load_bundle` can read."""
    for kind in PLUGINS:
        _import_plugin(kind)
    return sorted(_LOADERS)


def loader_for(kind: str, where: str) -> Loader:
    """The loader of ``kind`` (importing its plugin module if needed); unknown kinds get suggestions."""
    _import_plugin(kind)
    if kind not in _LOADERS:
        raise_unknown(
            "bundle kind", kind, _LOADERS,
            hint=f"(in {where}; is the plugin that writes it installed?)",
        )  # fmt: skip
    return _LOADERS[kind]


def _import_plugin(kind: str) -> None:
    if kind in PLUGINS and kind not in _LOADERS:
        with contextlib.suppress(ImportError):  # an optional dependency missing: kind unavailable
            importlib.import_module(PLUGINS[kind])
