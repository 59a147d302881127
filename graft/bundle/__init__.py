"""Model bundles: a folder with safetensors weights and a ``model.json``; loading never unpickles.

A bundle is what ``graft fit`` leaves behind and what ``graft predict``, ``graft evaluate`` and
``graft export`` read::

    bundle/
      model.safetensors   weights (safetensors: plain tensors, no code)
      model.json          {"format": "graft-bundle", "format_version": 1, "kind": "classifier", "spec",
                           "classes", "data_config", "recipe", "metrics", "weights_sha256", ...}

The whole folder is written into a temporary sibling and renamed into place, so a crash never leaves
a half-written bundle. Loading checks the format, the version and the sha256 of every file before
reading a single tensor. Other kinds of bundle (``probe``, ``onnx``, ``ensemble``) plug in with
:func:`register_kind`.

The package, by concern: :mod:`~graft.bundle.schema` (the ``model.json`` format, :class:`Bundle`,
:class:`BundleError`), :mod:`~graft.bundle.saving`, :mod:`~graft.bundle.loading`,
:mod:`~graft.bundle.kinds` (the registry of kinds) and :mod:`~graft.bundle.checks` (every field
read from a ``model.json`` or a feature store's ``manifest.json``, checked before use).

Example:
    >>> import timm, tempfile
    >>> model = timm.create_model("test_efficientnet", num_classes=3)
    >>> path = save_bundle(tempfile.mkdtemp() + "/b", model, ["a", "b", "c"],
    ...                    {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3},
    ...                    spec={"name": "test_efficientnet", "num_classes": 3})  # doctest: +SKIP
    >>> load_bundle(path).classes  # doctest: +SKIP
    ['a', 'b', 'c']
"""

from __future__ import annotations

from graft.bundle.kinds import loader_for, register_kind, registered_kinds
from graft.bundle.loading import (
    build_from_spec,
    load_bundle,
    load_classifier,
    load_weights,
    verify_files,
)
from graft.bundle.saving import clean_data_config, save_bundle, write_bundle
from graft.bundle.schema import (
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    Bundle,
    BundleError,
    read_meta,
)

__all__ = [
    "FORMAT", "FORMAT_VERSION", "META_FILE", "PICKLE_SUFFIXES", "WEIGHTS_FILE", "Bundle",
    "BundleError", "build_from_spec", "clean_data_config", "load_bundle", "load_classifier",
    "load_weights", "loader_for", "read_meta", "register_kind", "registered_kinds", "save_bundle",
    "verify_files", "write_bundle",
]  # fmt: skip
