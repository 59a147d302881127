"""Perceptual hashes (``imagehash.phash``, 64 bits) of many images, decoded in threads and cached.

The cache is a JSON file mapping the sha256 of a file's bytes to its hash, so a second audit of the
same images (or of a dataset that gained a few) decodes only the new ones. Large JPEGs are decoded
at reduced size (``draft``): the hash looks at a 32x32 thumbnail anyway.

Example:
    >>> hashes = perceptual_hashes(["a.png", "b.png"], ["sha-a", "sha-b"])  # doctest: +SKIP
    >>> hashes.shape  # one row of 64 bits per image  # doctest: +SKIP
    (2, 64)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from graft.io import read_json, write_json
from graft.log import get_logger

log = get_logger("graft.auditing")

BITS = 64
CACHE_FORMAT = "graft-phash-v1"


def phash_bits(path: str | os.PathLike) -> np.ndarray | None:
    """The 64-bit DCT perceptual hash of the image at ``path`` as booleans (``None``: unreadable).

    Example:
        >>> phash_bits("photo.jpg").shape  # doctest: +SKIP
        (64,)
    """
    import imagehash

    try:
        with Image.open(path) as image:
            image.draft("L", (64, 64))  # JPEG: decode at 1/2 .. 1/8 scale; others: no-op
            gray = image.convert("L")
        return np.asarray(imagehash.phash(gray).hash, dtype=bool).reshape(-1)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def perceptual_hashes(
    files: list[str],
    digests: list[str],
    cache: str | os.PathLike | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """``(n, 64)`` booleans, one perceptual hash per file; a row of ``False`` when unreadable.

    ``digests`` (the sha256 of each file) key the optional JSON ``cache``.
    """
    known = _read_cache(cache)
    todo = [i for i, d in enumerate(digests) if d not in known]
    threads = workers if workers and workers > 0 else min(8, (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(threads) as pool:  # PIL releases the GIL while decoding
        fresh = list(pool.map(phash_bits, [files[i] for i in todo]))
    for i, bits in zip(todo, fresh, strict=True):
        if bits is not None:
            known[digests[i]] = _to_hex(bits)
    if cache is not None and todo:
        write_json(cache, {"format": CACHE_FORMAT, "hashes": known})
    out = np.zeros((len(files), BITS), dtype=bool)
    for i, digest in enumerate(digests):
        if digest in known:
            out[i] = _from_hex(known[digest])
    log.info("perceptual hashes: %d cached, %d computed", len(files) - len(todo), len(todo))
    return out


def _read_cache(cache: str | os.PathLike | None) -> dict[str, str]:
    if cache is None or not Path(cache).is_file():
        return {}
    try:
        data = read_json(cache)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    return {str(k): str(v) for k, v in dict(data.get("hashes") or {}).items()}


def _to_hex(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _from_hex(text: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8)).astype(bool)[:BITS]
