"""Ensemble bundles (``kind="ensemble"``): the member bundles copied inside, weights in JSON.

An ensemble bundle is self-contained; moving or deleting the bundles it was built from does not
affect it::

    ensemble/
      model.json      kind "ensemble", classes, data_config (the shared decode: largest member size,
                      pixels in [0, 1]), metrics (validation), extra.ensemble (how weights were chosen)
      members.json    [{"folder": "member-0", "weight": 0.6, "kind", "model", "source",
                        "meta_sha256"}, ...]
      member-0/       a complete bundle (its own model.json, safetensors, checksums)
      member-1/       ...

``model.json`` records the sha256 of ``members.json``, which records the sha256 of each member's
``model.json``, which records its weights' sha256: loading checks the whole chain and, like every
bundle, never unpickles. Importing this module registers the kind with
:func:`graft.bundle.register_kind`.

Example:
    >>> b = graft.load_bundle("runs/ensemble")  # doctest: +SKIP
    >>> b.kind, b.model.weights.tolist()  # doctest: +SKIP
    ('ensemble', [0.65, 0.35])
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from graft.bundle import (
    META_FILE,
    Bundle,
    BundleError,
    load_bundle,
    read_meta,
    register_kind,
    write_bundle,
)
from graft.ensembling.model import EnsembleModel
from graft.errors import UnsafeFileError
from graft.io import read_json, sha256_file, write_json

MEMBERS_FILE = "members.json"
_FOLDER = re.compile(r"^member-\d{1,4}$")


def shared_data_config(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ensemble's decode: the largest member input size (its crop and interpolation), in [0, 1].

    Each member resizes and normalises that tensor itself (see :mod:`graft.ensembling.model`).

    Example:
        >>> shared_data_config([{"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.2] * 3}])["mean"]
        [0.0, 0.0, 0.0]
    """
    largest = max(configs, key=lambda c: int(c["input_size"][1]) * int(c["input_size"][2]))
    channels = int(largest["input_size"][0])
    return {
        "input_size": [int(v) for v in largest["input_size"]],
        "interpolation": largest.get("interpolation", "bilinear"),
        "crop_pct": largest.get("crop_pct", 1.0),
        "crop_mode": largest.get("crop_mode", "center"),
        "mean": [0.0] * channels,
        "std": [1.0] * channels,
        "normalization": "per-member (inside the model)",
    }


def save_ensemble_bundle(
    out: str | os.PathLike,
    members: Sequence[Bundle],
    weights: Sequence[float],
    *,
    metrics: Mapping[str, Any] | None = None,
    selection: Mapping[str, Any] | None = None,
) -> Path:
    """Copy ``members`` into a new ``ensemble`` bundle at ``out`` with their ``weights``."""
    entries = [
        {
            "folder": f"member-{i}",
            "weight": float(w),
            "kind": b.kind,
            "model": str((b.meta.get("spec") or {}).get("name", b.kind)),
            "source": os.fspath(b.path),
        }
        for i, (b, w) in enumerate(zip(members, weights, strict=True))
    ]

    def write_members(path: Path) -> None:  # the member folders go next to members.json
        for entry, bundle in zip(entries, members, strict=True):
            copy_bundle(Path(bundle.path), path.parent / entry["folder"])
            entry["meta_sha256"] = sha256_file(path.parent / entry["folder"] / META_FILE)
        write_json(path, {"members": entries})

    meta = {
        "kind": "ensemble",
        "spec": {"name": "ensemble(" + ", ".join(e["model"] for e in entries) + ")"},
        "classes": list(members[0].classes),
        "data_config": shared_data_config([b.data_config for b in members]),
        "recipe": None,
        "metrics": dict(metrics) if metrics else None,
        "extra": {"ensemble": dict(selection or {}), "members": entries},
    }
    return write_bundle(out, {MEMBERS_FILE: write_members}, meta)


def copy_bundle(src: Path, dst: Path) -> None:
    """Copy the files a bundle lists (and, for an ensemble, its member folders) to ``dst``."""
    meta = read_meta(src)
    dst.mkdir(parents=True)
    for name in [META_FILE, *(meta.get("files") or {})]:
        if Path(name).name != name:
            raise UnsafeFileError(f"{src / META_FILE} names a file outside the bundle ('{name}')")
        shutil.copy2(src / name, dst / name)
    if meta.get("kind") == "ensemble":
        for entry in _entries(src):
            copy_bundle(src / entry["folder"], dst / entry["folder"])


def _entries(folder: Path) -> list[dict[str, Any]]:
    """``members.json``, checked: safe folder names, finite non-negative weights summing to 1."""
    where = folder / MEMBERS_FILE
    data = read_json(where)
    entries = data.get("members") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UnsafeFileError(f"{where} lists no members; the bundle is damaged. Create it again.")
    for e in entries:
        if not isinstance(e, dict) or not _FOLDER.match(str(e.get("folder", ""))):
            raise UnsafeFileError(f"{where}: member entry {e!r} has no valid 'folder' (member-N)")
        w = e.get("weight")
        if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise UnsafeFileError(f"{where}: weight {w!r} of {e['folder']} is not a number >= 0")
    total = sum(e["weight"] for e in entries)
    if abs(total - 1.0) > 1e-6:
        raise UnsafeFileError(f"{where}: the member weights sum to {total}, not 1; it was edited.")
    return entries


def load_ensemble_bundle(folder: Path, meta: dict[str, Any], device: str = "cpu") -> Bundle:
    """Loader for ``kind="ensemble"``: check and load every member, then combine them."""
    members = []
    entries = _entries(folder)
    for entry in entries:
        sub = folder / entry["folder"]
        if not (sub / META_FILE).is_file() or sha256_file(sub / META_FILE) != entry.get(
            "meta_sha256"
        ):
            raise UnsafeFileError(
                f"{sub / META_FILE} is missing or does not match the sha256 in {folder / MEMBERS_FILE}; "
                "the ensemble was edited or copied incompletely. Copy the whole folder or create it again."
            )
        member = load_bundle(sub, device=device)
        if not isinstance(member.model, nn.Module) or member.classes != list(meta["classes"]):
            raise BundleError(
                f"{sub} does not fit the ensemble in {folder} (kind {member.kind}, classes "
                f"{member.classes[:5]}); the bundle was edited. Create it again with graft ensemble."
            )
        members.append(member)
    model = EnsembleModel(
        [m.model for m in members],
        [m.data_config for m in members],
        [e["weight"] for e in entries],
    ).to(device).eval()  # fmt: skip
    return Bundle(
        model, list(meta["classes"]), dict(meta["data_config"]), meta, "ensemble", folder, device,
        extra={"members": members},
    )  # fmt: skip


register_kind("ensemble", load_ensemble_bundle)
