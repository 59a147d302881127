"""Perceptual hashes (64-bit DCT "phash") of many images, decoded in threads, hashed in one batch.

The hash is imagehash's ``phash`` (https://github.com/JohannesBuchner/imagehash, BSD-2), bit for bit
(the tests compare against it): grey levels, LANCZOS-resized to 32x32, 2-D DCT-II, the top-left 8x8
coefficients compared with their median. Here the DCTs of all images run as one array operation
instead of one Python call per image (5x faster on 10,000 small images).

Each image is decoded once for its hash and its 64x64 grey thumbnail (:mod:`graft.auditing.pixels`).
A cache (``.npz``, keyed by the sha256 of a file's bytes) keeps both, so a second audit of the same
images (or of a dataset that gained a few) decodes only the new ones. Large JPEGs are decoded at
reduced size (``draft``): nothing here looks at more than 64x64 pixels.

Example:
    >>> thumbs, hashes = fingerprints(["a.png", "b.png"], ["sha-a", "sha-b"])  # doctest: +SKIP
    >>> thumbs.shape, hashes.shape  # doctest: +SKIP
    ((2, 64, 64), (2, 64))
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from graft.log import get_logger

log = get_logger("graft.auditing")

BITS = 64
SIDE = 32  # imagehash: hash_size 8 x highfreq_factor 4
CACHE_FORMAT = "graft-audit-fingerprints-v1"


def decode_small(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """``(32x32, 64x64)`` grey thumbnails (uint8, LANCZOS) of the image at ``path``; the first is
    the one imagehash hashes. ``None`` when unreadable."""
    from graft.auditing.pixels import thumbnail64

    try:
        with Image.open(path) as image:
            image.draft(
                "L", (4 * SIDE, 4 * SIDE)
            )  # JPEG: decode at 1/2 .. 1/8 scale; others: no-op
            grey = image.convert("L")
            small = grey.resize((SIDE, SIDE), Image.Resampling.LANCZOS)
            return np.asarray(small, dtype=np.uint8), thumbnail64(grey)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def phash_batch(thumbs: np.ndarray) -> np.ndarray:
    """``(n, 64)`` booleans from ``(n, 32, 32)`` grey thumbnails (imagehash's phash, batched).

    Example:
        >>> phash_batch(np.zeros((2, 32, 32), np.uint8)).shape
        (2, 64)
    """
    from scipy.fftpack import dct

    coeffs = dct(dct(np.asarray(thumbs), axis=1), axis=2)[:, :8, :8].reshape(len(thumbs), BITS)
    return coeffs > np.median(coeffs, axis=1, keepdims=True)


def phash_bits(path: str | os.PathLike) -> np.ndarray | None:
    """The 64-bit perceptual hash of the image at ``path`` (``None``: unreadable).

    Example:
        >>> phash_bits("photo.jpg").shape  # doctest: +SKIP
        (64,)
    """
    small = decode_small(path)
    return None if small is None else phash_batch(small[0][None])[0]


def fingerprints(
    files: list[str],
    digests: list[str],
    cache: str | os.PathLike | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(thumbnails (n, 64, 64) uint8, hashes (n, 64) bool)`` of ``files``; zeros when unreadable.

    ``digests`` (the sha256 of each file) key the optional ``cache`` (an ``.npz`` of plain arrays,
    read without pickle).
    """
    known = _read_cache(cache)
    todo = [i for i, d in enumerate(digests) if d not in known]
    threads = workers if workers and workers > 0 else min(8, (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(threads) as pool:  # PIL releases the GIL while decoding
        decoded = list(pool.map(decode_small, [files[i] for i in todo]))
    read = [(i, d) for i, d in zip(todo, decoded, strict=True) if d is not None]
    if read:
        bits = phash_batch(np.stack([d[0] for _, d in read]))
        known.update({digests[i]: (d[1], b) for (i, d), b in zip(read, bits, strict=True)})
    if cache is not None and read:
        _write_cache(cache, known)
    thumbs = np.zeros((len(files), 64, 64), dtype=np.uint8)
    hashes = np.zeros((len(files), BITS), dtype=bool)
    for i, digest in enumerate(digests):
        if digest in known:
            thumbs[i], hashes[i] = known[digest]
    log.info("image fingerprints: %d cached, %d computed", len(files) - len(todo), len(todo))
    return thumbs, hashes


def _read_cache(cache: str | os.PathLike | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if cache is None or not Path(cache).is_file():
        return {}
    try:
        with np.load(cache, allow_pickle=False) as data:
            if str(data["format"]) != CACHE_FORMAT:
                return {}
            digests, thumbs, bits = data["digests"], data["thumbs"], data["phash"]
    except (OSError, ValueError, KeyError):
        return {}
    hashes = np.unpackbits(bits, axis=1).astype(bool)[:, :BITS]
    return {str(d): (t, h) for d, t, h in zip(digests, thumbs, hashes, strict=True)}


def _write_cache(cache: str | os.PathLike, known: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    from graft.io import atomic_path

    digests = sorted(known)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            format=np.array(CACHE_FORMAT),
            digests=np.array(digests),
            thumbs=np.stack([known[d][0] for d in digests]),
            phash=np.packbits(np.stack([known[d][1] for d in digests]), axis=1),
        )
