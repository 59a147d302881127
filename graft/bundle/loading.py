"""Reading bundles: :func:`load_bundle` checks the format, the version and the sha256 of every file
before reading a single tensor, refuses pickles unopened, and hands the folder to the loader of
its ``kind`` (:mod:`graft.bundle.kinds`); :func:`load_classifier` is the loader of ``classifier``.

Example:
    >>> b = load_bundle("runs/x/bundle")  # doctest: +SKIP
    >>> b.kind, b.classes[:2]  # doctest: +SKIP
    ('classifier', ['cat', 'dog'])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from graft.bundle.checks import check_head
from graft.bundle.kinds import loader_for, register_kind
from graft.bundle.schema import (
    META_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    Bundle,
    BundleError,
    read_meta,
)
from graft.errors import UnsafeFileError
from graft.io import sha256_file


def load_bundle(path: str | os.PathLike, device: str = "cpu") -> Bundle:
    """Load a bundle folder (or its ``model.json``) after checking format, version and checksums.

    Pickle files (``.pt``, ``.pth``, ``.ckpt``, ...) are refused without being opened: unpickling
    can run arbitrary code.

    Example:
        >>> b = load_bundle("runs/x/bundle")  # doctest: +SKIP
        >>> b.kind, b.classes[:2]  # doctest: +SKIP
        ('classifier', ['cat', 'dog'])
    """
    folder = _bundle_folder(Path(path))
    meta = read_meta(folder)
    verify_files(folder, meta)
    loader = loader_for(meta.get("kind", "classifier"), str(folder / META_FILE))
    return loader(folder, meta, device)


def verify_files(folder: Path, meta: Mapping[str, Any]) -> None:
    """Check that every file listed in ``model.json`` exists and matches its sha256."""
    sums = dict(meta.get("files") or {})
    if not sums:
        raise BundleError(
            f"{folder / META_FILE} lists no files; the bundle is damaged. Save it again."
        )
    for name, expected in sums.items():
        file = folder / name
        if Path(name).name != name:
            raise UnsafeFileError(
                f"{folder / META_FILE} names a file outside the bundle ('{name}'); refusing it."
            )
        if not file.exists():
            raise BundleError(
                f"bundle '{folder}' is incomplete: {name} is missing. Copy the whole folder."
            )
        actual = sha256_file(file)
        if actual != expected:
            raise UnsafeFileError(
                f"{file} does not match the sha256 recorded in {META_FILE} "
                f"(expected {expected[:12]}..., got {actual[:12]}...): it is corrupt, truncated or was "
                "replaced. Copy the bundle again or re-create it."
            )


def _bundle_folder(path: Path) -> Path:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(
            f"refusing to load '{path}': {path.suffix} files are Python pickles, and unpickling a file "
            "can run arbitrary code from whoever made it. graft loads bundles (a folder with "
            "model.safetensors + model.json) only; re-save trusted weights as a bundle with "
            "graft.save_bundle after loading them yourself with torch.load(..., weights_only=True)."
        )
    if path.is_file() and (path.parent / META_FILE).is_file():  # model.json or a weights file
        path = path.parent
    if not path.exists():
        raise BundleError(
            f"bundle '{path}' does not exist. Pass the folder written by `graft fit` (it holds model.json)."
        )
    if not path.is_dir():
        raise BundleError(
            f"'{path}' is a file; a bundle is a folder with model.json and its weights. Pass the folder."
        )
    return path


def load_classifier(folder: Path, meta: dict[str, Any], device: str = "cpu") -> Bundle:
    """Loader for ``kind="classifier"``: rebuild from ``spec`` and read the safetensors weights."""
    model = build_from_spec(meta["spec"])
    check_head(getattr(model, "num_classes", None), meta["classes"], str(folder / META_FILE))
    load_weights(model, folder / WEIGHTS_FILE)
    model.to(device).eval()
    return Bundle(
        model=model,
        classes=list(meta["classes"]),
        data_config=dict(meta["data_config"]),
        meta=meta,
        kind=meta["kind"],
        path=folder,
        device=device,
    )


def build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Rebuild an architecture from a bundle's ``spec`` without downloading or loading weights."""
    from graft.models import create_model

    try:
        return create_model(**dict(spec), pretrained=False)
    except TypeError as e:
        raise BundleError(f"model.json has a spec this graft cannot build ({spec}): {e}") from e


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into ``model`` strictly, with a clear error on a mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(model, str(path), strict=True)
    except SafetensorError as e:
        raise BundleError(
            f"{path} is not a readable safetensors file ({e}); the bundle is damaged."
        ) from e
    except RuntimeError as e:
        raise BundleError(
            f"the weights in {path} do not fit the architecture in model.json ({str(e)[:300]}); "
            "the bundle was edited or written by an incompatible version."
        ) from e


register_kind("classifier", load_classifier)
