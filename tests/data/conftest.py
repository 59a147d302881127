"""Fixture folders for the data tests: every bad-file kind, mixed image modes, odd names.

``make_messy_folder(root)`` writes an ImageFolder with two classes (``alpha``, ``beta``) of valid
images in many modes and formats, plus one file of each bad kind. ``BAD`` maps each bad file name
to the reason :func:`graft.data.load_image` must give.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# bad file (relative to root) -> expected reason
BAD = {
    "alpha/empty.jpg": "zero-byte file",
    "alpha/truncated.jpg": "truncated",
    "beta/truncated.png": "truncated",
    "alpha/random.jpg": "not an image",
    "beta/page.jpg": "not an image",
    "beta/bomb.png": "decompression bomb",
    "alpha/loop_a.jpg": "symlink loop",
    "alpha/loop_b.jpg": "symlink loop",
}
IGNORED = [
    "alpha/.hidden.png",
    "alpha/.DS_Store",
    "alpha/notes.txt",
    "beta/labels.json",
    ".secret/x.png",
]


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def png_header_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def exif_rotated_jpeg(path: Path) -> None:
    """40x20 red image whose left quarter is blue, saved with EXIF orientation 6 (rotate 90 CW)."""
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, quality=95, exif=exif.tobytes())


def palette_with_transparency() -> Image.Image:
    """4x4 palette image: pixel (0, 0) red, the rest palette index 0, which is transparent."""
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.info["transparency"] = 0
    return img


def good_images(rng: np.random.Generator) -> dict[str, Image.Image | bytes]:
    """Valid images in many modes and formats (file name -> image or raw bytes)."""
    rgb = Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8))
    gray = Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8))
    ramp16 = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)
    float_img = Image.fromarray(np.linspace(0, 1, 12 * 10, dtype=np.float32).reshape(12, 10), "F")
    rgba = Image.fromarray(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA")
    la = Image.fromarray(rng.integers(0, 256, (16, 16, 2), dtype=np.uint8), "LA")
    return {
        "alpha/rgb.jpg": rgb,
        "alpha/gray.png": gray,
        "alpha/sixteen.png": Image.fromarray(ramp16),
        "alpha/sixteen.tif": Image.fromarray(ramp16),
        "alpha/float.tiff": float_img,
        "alpha/cmyk.jpg": Image.new("CMYK", (8, 8), (0, 255, 255, 0)),
        "alpha/my photo é.png": rgb.resize((10, 12)),
        "beta/palette.png": palette_with_transparency(),
        "beta/rgba.png": rgba,
        "beta/la.png": la,
        "beta/one.png": Image.new("RGB", (1, 1), (10, 20, 30)),
        "beta/bilevel.bmp": gray.convert("1"),
        "beta/photo.webp": rgb,
        "beta/nested/deep.tif": rgb,
        "beta/anim.gif": gray.convert("P"),
        "beta/Ünïcode name.JPG": rgb,
    }


def make_messy_folder(root: Path, seed: int = 0) -> Path:
    """Write the messy ImageFolder under ``root``; return ``root``."""
    rng = np.random.default_rng(seed)
    for name, img in good_images(rng).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path) if isinstance(img, Image.Image) else path.write_bytes(img)
    exif_rotated_jpeg(root / "beta" / "rotated.jpg")
    _write_bad(root, rng)
    for name in IGNORED:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            png_bytes(Image.new("L", (4, 4))) if name.endswith(".png") else b"not data"
        )
    return root


def _write_bad(root: Path, rng: np.random.Generator) -> None:
    jpeg = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(jpeg, format="JPEG")
    png = png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    contents = {
        "alpha/empty.jpg": b"",
        "alpha/truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
        "beta/truncated.png": png[: len(png) // 2],
        "alpha/random.jpg": rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
        "beta/page.jpg": b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
        "beta/bomb.png": png_header_bomb(),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    os.symlink("loop_b.jpg", root / "alpha" / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "alpha" / "loop_b.jpg")


@pytest.fixture(scope="session")
def messy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The messy ImageFolder (read-only use)."""
    return make_messy_folder(tmp_path_factory.mktemp("messy") / "data")
