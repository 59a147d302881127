"""Robust image decoding: every file either becomes an 8-bit PIL image or raises :class:`ImageError`.

What :func:`load_image` does with each kind of input:

- JPEG, PNG, BMP, TIFF, WebP, GIF (first frame) decode as usual; EXIF orientation is applied.
- 16-bit images (PNG/TIFF, mode ``I;16`` or ``I``) are scaled linearly to 8 bits (``v * 255 / 65535``,
  rounded), never clipped. Float images (mode ``F``) in ``[0, 1]`` are scaled by 255; other float ranges
  are stretched from their minimum and maximum to ``[0, 255]``.
- Alpha (RGBA, LA, palette with transparency) is composited on a white background, so transparent
  parts look like a white page rather than black. CMYK and YCbCr are converted to RGB.
- ``mode="RGB"`` returns 3 channels, ``mode="L"`` one (grayscale models, ``in_chans=1``), and
  ``mode=None`` keeps the image's nature: grayscale stays ``L``, everything else becomes ``RGB``.

A file that cannot be used raises :class:`ImageError` (a :class:`graft.errors.DataError`) with a short
``reason``: ``zero-byte file``, ``truncated``, ``not an image``, ``decompression bomb``, ``corrupt``,
``permission denied``, ``symlink loop``, ``missing file``, ``unreadable``.

Images larger than :data:`MAX_IMAGE_PIXELS` pixels (100 megapixels by default; environment variable
``GRAFT_MAX_IMAGE_PIXELS`` changes it) are refused as decompression bombs before any pixel is decoded.
Importing this module sets Pillow's ``Image.MAX_IMAGE_PIXELS`` to the same value and silences
Pillow's bomb warning (the refusal replaces it) and its warnings about corrupt TIFF metadata.

Example:
    >>> img = load_image("cat.jpg")  # doctest: +SKIP
    >>> img.mode, img.size  # doctest: +SKIP
    ('RGB', (640, 480))
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from graft.errors import DataError
from graft.log import get_logger

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm"}
)
MAX_IMAGE_PIXELS = int(os.environ.get("GRAFT_MAX_IMAGE_PIXELS", 100_000_000))
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_VALID_MODES = ("RGB", "L", None)

log = get_logger("graft.data")

# graft's policy for every image it opens: Pillow refuses at twice this limit, and open_image()
# refuses anything above it itself, so Pillow's warning between the two is redundant noise.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# Corrupt TIFF/EXIF metadata: Pillow warns and carries on; the pixels are still decoded and checked.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


class ImageError(DataError):
    """An image file that cannot be decoded; ``reason`` is a short label, ``path`` the file."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        self.path = os.fspath(path)
        self.reason = reason
        msg = f"cannot read image {self.path}: {reason}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a non-hidden file name with an image extension (case-insensitive)."""
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a whole file, turning OS errors into :class:`ImageError` with a short reason."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageError(path, os_error_reason(e), e.strerror or str(e)) from e
    if not data:
        raise ImageError(path, "zero-byte file")
    return data


def load_image(path: str | os.PathLike, mode: str | None = "RGB") -> Image.Image:
    """Decode ``path`` to an 8-bit PIL image in ``mode`` (``"RGB"``, ``"L"`` or ``None``).

    Raises :class:`ImageError` with a short reason for files that are not usable images.

    Example:
        >>> load_image("scan.tif", mode="L").mode  # doctest: +SKIP
        'L'
    """
    return decode_image(read_bytes(path), path, mode)


def decode_image(
    data: bytes, path: str | os.PathLike = "<bytes>", mode: str | None = "RGB"
) -> Image.Image:
    """Decode image bytes (see :func:`load_image`); ``path`` only names the file in errors."""
    if mode not in _VALID_MODES:
        raise ValueError(f"mode must be one of {_VALID_MODES}, got {mode!r}")
    return finish_image(open_image(data, path), path, mode)


def finish_image(
    img: Image.Image, path: str | os.PathLike, mode: str | None = "RGB"
) -> Image.Image:
    """Decode an image returned by :func:`open_image`: pixels, EXIF orientation, 8 bits, ``mode``."""
    try:
        img.load()
    except Exception as e:  # untrusted bytes: any decoder failure means a broken file
        raise ImageError(path, _decode_reason(e), str(e)) from e
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception as e:  # a broken EXIF block must not lose the pixels
        log.debug("ignoring unreadable EXIF orientation of %s: %s", path, e)
    try:
        return to_mode(to_8bit(img), mode)
    except (ValueError, OSError, TypeError) as e:
        raise ImageError(path, "unsupported mode", f"{img.mode}: {e}") from e


def open_image(data: bytes, path: str | os.PathLike = "<bytes>") -> Image.Image:
    """Open image bytes lazily (header only) and refuse decompression bombs."""
    if not data:
        raise ImageError(path, "zero-byte file")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ImageError(path, "decompression bomb", str(e)) from e
    except UnidentifiedImageError as e:
        raise ImageError(path, "not an image", _sniff(data)) from e
    except Exception as e:  # untrusted bytes: struct.error, IndexError, ... from fuzzed headers
        raise ImageError(path, "corrupt", str(e)) from e
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(
            path, "decompression bomb", f"{width}x{height} pixels > {MAX_IMAGE_PIXELS:,} allowed"
        )
    if width < 1 or height < 1:
        raise ImageError(path, "unreadable", f"empty image {width}x{height}")
    return img


def is_grayscale_mode(mode: str) -> bool:
    """True for PIL modes that store one intensity channel (with or without alpha)."""
    return mode in _GRAY_MODES


def to_8bit(img: Image.Image) -> Image.Image:
    """Convert 16-bit, 32-bit and float images to 8-bit ``L``; other modes pass through."""
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if arr.max(initial=0) <= 65535 and arr.min(initial=0) >= 0 else None
        return Image.fromarray(_stretch(arr, scale), "L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        in_unit = finite.size and finite.min() >= 0.0 and finite.max() <= 1.0
        return Image.fromarray(_stretch(np.nan_to_num(arr), 1.0 if in_unit else None), "L")
    return img


def to_mode(img: Image.Image, mode: str | None) -> Image.Image:
    """Convert an 8-bit image to ``RGB``/``L`` (``None``: gray stays ``L``), alpha on white."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        img = _composite_on_white(img)
    elif img.mode == "1":
        img = img.convert("L")
    target = mode or ("L" if img.mode == "L" else "RGB")
    return img if img.mode == target else img.convert(target)


def _composite_on_white(img: Image.Image) -> Image.Image:
    base_mode = "L" if img.mode in ("LA", "La") else "RGB"
    rgba = img.convert("LA" if base_mode == "L" else "RGBA")
    background = Image.new(rgba.mode, rgba.size, (255, 255) if base_mode == "L" else (255,) * 4)
    return Image.alpha_composite(background.convert("RGBA"), rgba.convert("RGBA")).convert(
        base_mode
    )


def _stretch(arr: np.ndarray, scale: float | None) -> np.ndarray:
    """Map ``arr`` to uint8: ``arr / scale * 255`` when ``scale`` is given, else min-max."""
    if scale is None:
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        arr, scale = arr - lo, (hi - lo) or 1.0
    return np.clip(np.rint(arr * (255.0 / scale)), 0, 255).astype(np.uint8)


def os_error_reason(e: OSError) -> str:
    """A short reason for a file that could not be read: ``symlink loop``, ``permission denied``, ..."""
    if e.errno == errno.ELOOP:
        return "symlink loop"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.ENOENT:
        return "missing file"
    if e.errno == errno.EISDIR:
        return "not a file"
    return "unreadable"


def _decode_reason(e: BaseException) -> str:
    if isinstance(e, Image.DecompressionBombError):
        return "decompression bomb"
    text = str(e).lower()
    if "truncat" in text or isinstance(e, EOFError) or "broken data stream" in text:
        return "truncated"
    return "corrupt"


def _sniff(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")):
        return "HTML/XML text saved with an image extension"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "plain text"
    return f"unknown format, starts with {data[:8].hex(' ')}"
