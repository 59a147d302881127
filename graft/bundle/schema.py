"""What a bundle is: the ``model.json`` format, :class:`Bundle` (a loaded one) and :class:`BundleError`.

``model.json`` starts with the header :func:`header` writes (``format``, ``format_version``,
``kind``, ``graft_version``, ``created``); :func:`read_meta` refuses a file whose format or version
this graft does not read, or that lacks the keys every bundle has, and checks every field graft
reads (:mod:`graft.bundle.checks`).

Example:
    >>> header({"kind": "probe", "classes": ["a"]})["format"]
    'graft-bundle'
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from graft.bundle.checks import check_meta
from graft.errors import GraftError
from graft.io import read_json

FORMAT = "graft-bundle"
FORMAT_VERSION = 1
META_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")


class BundleError(GraftError, ValueError):
    """A bundle folder is missing, incomplete, corrupt or of an unsupported format."""


@dataclass
class Bundle:
    """A loaded bundle.

    ``model`` maps a normalised float batch ``(B, C, H, W)`` to logits ``(B, num_classes)`` (a torch
    module in eval mode, or a runtime wrapper such as the ONNX backend); ``data_config`` holds the
    preprocessing (input size, interpolation, crop fraction, mean, std) that produced its inputs.
    """

    model: Any
    classes: list[str]
    data_config: dict[str, Any]
    meta: dict[str, Any]
    kind: str
    path: Path
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for a preprocessed batch, on the CPU as float32."""
        with torch.inference_mode():
            out = self.model(batch.to(self.device))
        return out.detach().float().cpu()


def header(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The keys ``model.json`` starts with, then ``meta``'s (which cannot override them).

    Example:
        >>> sorted(header({"kind": "onnx"}))
        ['created', 'format', 'format_version', 'graft_version', 'kind']
    """
    from graft import __version__

    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": meta.get("kind", "classifier"),
        "graft_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return {**head, **{k: v for k, v in meta.items() if k not in head}}


def read_meta(folder: Path) -> dict[str, Any]:
    """Read and check ``model.json``: format name, version, and the keys every bundle has.

    Example:
        >>> read_meta(Path("runs/x/bundle"))["kind"]  # doctest: +SKIP
        'classifier'
    """
    meta_path = folder / META_FILE
    if not meta_path.exists():
        found = sorted(p.name for p in folder.iterdir())[:10]
        raise BundleError(
            f"'{folder}' is not a complete graft bundle: {META_FILE} is missing (found: {found or 'nothing'}). "
            "A bundle is written by `graft fit` or graft.save_bundle; an interrupted save leaves no bundle."
        )
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BundleError(
            f"{meta_path} is not a graft bundle description (format={got!r}, expected '{FORMAT}')."
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{meta_path} has format_version {version!r}; this graft reads version {FORMAT_VERSION}. "
            "Re-export the bundle with a matching graft version."
        )
    for key in ("kind", "classes", "data_config"):
        if key not in meta:
            raise BundleError(f"{meta_path} lacks '{key}'; the bundle is damaged. Save it again.")
    check_meta(meta, str(meta_path))
    return meta
