"""Probe bundles (``kind="probe"``): backbone weights + probe parameters, both safetensors, no pickle.

A probe bundle is a regular graft bundle folder::

    model.safetensors   backbone weights (the model without its classifier)
    probe.safetensors   scaler / PCA / classifier arrays (see :mod:`graft.features.probe_params`)
    model.json          kind "probe", spec (backbone), classes, data_config, metrics, and under
                        "extra": layer, pool and the probe description (classifier, best parameters)

:func:`load_probe_bundle` is registered with :func:`graft.bundle.register_kind`, so ``graft predict``
and ``graft evaluate`` run a probe on raw images like any other bundle.

Example:
    >>> save_probe_bundle("runs/probe", backbone, probe, classes, data_cfg, layer=None, pool="avg")  # doctest: +SKIP
    >>> graft.load_bundle("runs/probe").kind  # doctest: +SKIP
    'probe'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graft.bundle import (
    Bundle,
    BundleError,
    build_from_spec,
    load_weights,
    register_kind,
    write_bundle,
)
from graft.errors import UnsafeFileError
from graft.features.layers import LayerReader
from graft.features.probe_params import ProbeHead, export_probe

PROBE_FILE = "probe.safetensors"


class ProbeModel(nn.Module):
    """Normalised image batch -> probe scores: backbone activations, then the probe head."""

    def __init__(self, reader: LayerReader, head: ProbeHead) -> None:
        super().__init__()
        self.reader = reader
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.reader(x))


def save_probe_bundle(
    dir: str | os.PathLike,
    backbone: nn.Module,
    probe: Any,
    classes: list[str],
    data_config: dict[str, Any],
    layer: str | None,
    pool: str,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted :class:`graft.features.Probe` and its backbone as a ``probe`` bundle."""
    from safetensors.numpy import save_file
    from safetensors.torch import save_model

    from graft.bundle import clean_data_config

    arrays, info = export_probe(probe.pipeline_, probe.clf)
    spec = dict(getattr(backbone, "graft_spec", None) or {})
    describe = {
        "clf": probe.clf,
        "pca": probe.pca,
        "best_params": probe.best_params_,
        "cv_accuracy": probe.cv_accuracy_,
        "solver": getattr(probe, "solver_", None),
        "solver_info": getattr(probe, "solver_info_", {}),
        "head": info,
    }
    meta = {
        "kind": "probe",
        "spec": spec,
        "classes": list(classes),
        "data_config": clean_data_config(data_config),
        "recipe": {
            "name": "probe",
            "clf": probe.clf,
            "pca": probe.pca,
            "layer": layer,
            "pool": pool,
        },
        "metrics": metrics,
        "extra": {"layer": layer, "pool": pool, "probe": describe},
    }
    files = {
        "model.safetensors": lambda p: save_model(backbone, str(p), metadata={"format": "pt"}),
        PROBE_FILE: lambda p: save_file(arrays, str(p), metadata={"format": "graft-probe"}),
    }
    return write_bundle(dir, files, meta)


def load_probe_bundle(folder: Path, meta: dict[str, Any], device: str = "cpu") -> Bundle:
    """Loader for ``kind="probe"`` (called by :func:`graft.load_bundle` after checksums are verified)."""
    extra = meta.get("extra") or {}
    probe_info = (extra.get("probe") or {}).get("head")
    if not probe_info or PROBE_FILE not in (meta.get("files") or {}):
        raise UnsafeFileError(
            f"{folder} says kind 'probe' but lacks its probe parameters; save it again."
        )
    backbone = build_from_spec(meta["spec"])
    load_weights(backbone, folder / "model.safetensors")
    reader = LayerReader(backbone, extra.get("layer"), extra.get("pool", "avg"))
    head = ProbeHead(_read_probe_arrays(folder / PROBE_FILE), probe_info)
    model = ProbeModel(reader, head).to(device).eval()
    return Bundle(
        model=model,
        classes=list(meta["classes"]),
        data_config=dict(meta["data_config"]),
        meta=meta,
        kind="probe",
        path=folder,
        device=device,
        extra={"probe": extra.get("probe")},
    )


def _read_probe_arrays(path: Path) -> dict[str, Any]:
    """The probe's parameter arrays; a file that is not plain safetensors is a damaged bundle."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise BundleError(
            f"{path} is not a readable safetensors file ({str(e)[:200]}); the bundle is damaged. "
            "Save the probe again with `graft probe ... --out DIR`."
        ) from e


register_kind("probe", load_probe_bundle)
