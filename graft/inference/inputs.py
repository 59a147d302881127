"""Turn what a user points at (files, folders, globs, arrays) into images to predict.

Example:
    >>> files, missing = expand_paths(["photos/", "extra/*.jpg", "one.png"])  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from graft.data.images import to_mode
from graft.data.scan import images_under
from graft.errors import DataError

_GLOB_CHARS = set("*?[")


def expand_paths(items: Sequence[str | os.PathLike]) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand files, folders (recursively, image extensions only) and globs, in the order given.

    Returns ``(files, missing)``: ``missing`` lists ``(item, reason)`` for arguments that matched
    nothing. Duplicates are kept once. A file named explicitly is kept whatever its extension
    (decoding decides).

    Example:
        >>> expand_paths(["no/such/file.jpg"])
        ([], [('no/such/file.jpg', 'missing file')])
    """
    files: list[str] = []
    missing: list[tuple[str, str]] = []
    for item in items:
        text = os.fspath(item)
        found = _expand_one(text)
        if found is None:
            missing.append((text, "missing file"))
        elif not found:
            missing.append((text, "no images matched"))
        files += found or []
    return list(dict.fromkeys(files)), missing


def _expand_one(text: str) -> list[str] | None:
    path = Path(text)
    if path.is_dir():
        return images_under(path)
    if path.is_file() or os.path.islink(text):
        return [text]
    if _GLOB_CHARS & set(text):
        matches = sorted(glob.glob(text, recursive=True))
        out: list[str] = []
        for m in matches:
            out += images_under(Path(m)) if os.path.isdir(m) else [m]
        return out
    return None


def array_to_images(x: Any) -> list[Image.Image]:
    """Convert an image array ``(N, H, W)`` or ``(N, H, W, C)`` (uint8, or float in [0, 1]) to PIL images.

    Example:
        >>> [im.mode for im in array_to_images(np.zeros((2, 8, 8), np.uint8))]
        ['L', 'L']
    """
    arr = np.asarray(x)
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4)):
        raise DataError(
            f"image arrays must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got {arr.shape}. "
            "For channel-first data use x.transpose(0, 2, 3, 1)."
        )
    arr = _to_uint8(arr)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    mode = {3: "L"}.get(arr.ndim) or {3: "RGB", 4: "RGBA"}[arr.shape[-1]]
    return [to_mode(Image.fromarray(a, mode), None) for a in arr]


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DataError("image array contains NaN or inf values")
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        if lo < 0 or hi > 1.0:
            raise DataError(
                f"float image arrays must be in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]. Divide by 255?"
            )
        return np.rint(arr * 255).astype(np.uint8)
    if (
        np.issubdtype(arr.dtype, np.integer)
        and arr.min(initial=0) >= 0
        and arr.max(initial=0) <= 255
    ):
        return arr.astype(np.uint8)
    raise DataError(f"image arrays must be uint8 (0-255) or float in [0, 1]; got dtype {arr.dtype}")
