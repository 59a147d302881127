"""Cheap, parallel checks that image files decode: corrupt files are found before training starts.

The check reads the header, refuses decompression bombs, then decodes the pixels (JPEGs at 1/8
scale through libjpeg's DCT scaling, which still reads every byte of the stream, so truncation is
caught at a fraction of the cost). Decoding runs in a thread pool: Pillow releases the GIL while it
decodes.

Example:
    >>> bad = find_unreadable(["a.jpg", "b.png"])  # doctest: +SKIP
    >>> bad  # doctest: +SKIP
    [('b.png', 'truncated')]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from graft.data.images import ImageError, open_image, read_bytes


def default_workers() -> int:
    """Decode threads: one per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def check_image(path: str) -> str | None:
    """Return ``None`` when ``path`` decodes, else a short reason (``"truncated"``, ...)."""
    try:
        img = open_image(read_bytes(path), path)
        if img.format == "JPEG":
            img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
    except ImageError as e:
        return e.reason
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        text = str(e).lower()
        return "truncated" if "truncat" in text or isinstance(e, EOFError) else "corrupt"
    return None


def find_unreadable(paths: Sequence[str], workers: int | None = None) -> list[tuple[str, str]]:
    """Check ``paths`` in parallel; return ``(path, reason)`` for each file that fails, in order."""
    workers = workers or default_workers()
    if workers <= 1 or len(paths) < 64:
        reasons: Iterable[str | None] = map(check_image, paths)
        return [(p, r) for p, r in zip(paths, reasons, strict=True) if r]
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(check_image, paths, chunksize=32))
    return [(p, r) for p, r in zip(paths, reasons, strict=True) if r]
