"""The feature store: safetensors shards plus a ``manifest.json``, written incrementally and atomically.

Layout of a store folder::

    features/
      manifest.json          settings (model, weights hash, layer, pool, data config), classes,
                             one entry per image: file, label, split, size, mtime, sha256, shard, row,
                             the sha256 of every shard, and the skipped files with their reasons
      shard-00000.safetensors  {"features": float32 (rows, ...)}
      shard-00001.safetensors  ...

Every shard is written atomically, then the manifest is rewritten (atomically) to include it, so an
interrupted extraction leaves a consistent store: rerunning resumes with the images not yet stored.
Images are recognised by the sha256 of their bytes, so unchanged files are reused and changed files
are extracted again; the hash is recomputed only when a file's size or modification time changed.

Example:
    >>> store = FeatureStore("out/features")  # doctest: +SKIP
    >>> store.open(settings)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graft.bundle.checks import check_manifest_entries
from graft.errors import DataError
from graft.io import atomic_path, read_json, sha256_file, write_json
from graft.log import get_logger

log = get_logger("graft.features")

MANIFEST = "manifest.json"
FORMAT = "graft-features"
FORMAT_VERSION = 1


@dataclass
class Entry:
    """One stored image: where its features live and what identified its content."""

    file: str
    label: int
    split: str
    sha256: str
    size: int
    mtime_ns: int
    shard: str
    row: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FeatureStore:
    """A folder of feature shards and their manifest (see the module docstring)."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    shard_sha256: dict[str, str] = field(default_factory=dict)
    _shard_index: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, root: str | os.PathLike) -> FeatureStore:
        """Read a store's manifest (no features yet); raise a clear error when it is not a store."""
        root = Path(root)
        path = root / MANIFEST if root.is_dir() else root
        if not path.exists():
            raise DataError(
                f"'{root}' is not a feature store: {MANIFEST} is missing. "
                "Create one with `graft extract DATA --out DIR`."
            )
        meta = read_json(path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise DataError(f"{path} is not a graft feature manifest (format={got!r}).")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{path} has format_version {meta.get('format_version')!r}; this graft reads "
                f"{FORMAT_VERSION}. Extract again into a new folder."
            )
        check_manifest_entries(meta, str(path))
        store = cls(path.parent, dict(meta["settings"]), list(meta["classes"]))
        store.entries = [Entry(**e) for e in meta["entries"]]
        store.skipped = [tuple(s) for s in meta.get("skipped", [])]
        store.shard_sha256 = dict(meta.get("shards") or {})
        store._shard_index = int(meta.get("next_shard", 0))
        return store

    def reusable(self, settings: dict[str, Any]) -> dict[str, tuple[str, int]]:
        """Content hash -> (shard, row) of stored features made with exactly ``settings``.

        Only shards that exist and still match the sha256 recorded when they were written count:
        images in a missing, damaged or replaced shard are extracted again.
        """
        if self.settings != settings:
            return {}
        intact = {shard: self._shard_intact(shard) for shard in {e.shard for e in self.entries}}
        return {e.sha256: (e.shard, e.row) for e in self.entries if intact[e.shard]}

    def read_rows(self, locations: list[tuple[str, int]]) -> np.ndarray:
        """Features at ``(shard, row)`` locations, in that order, as one array."""
        cache: dict[str, np.ndarray] = {}
        rows = []
        for shard, row in locations:
            if shard not in cache:
                cache[shard] = self._read_shard(shard)
            if row >= len(cache[shard]):
                raise DataError(
                    f"{self.root / MANIFEST} points at row {row} of {shard}, which holds "
                    f"{len(cache[shard])} rows (damaged or edited); re-run `graft extract DATA "
                    f"--out {self.root}`."
                )
            rows.append(cache[shard][row])
        if not rows:
            return np.zeros((0,), dtype=np.float32)
        return np.stack(rows)

    def _shard_intact(self, shard: str) -> bool:
        path = self.root / shard
        if not path.is_file():
            return False
        expected = self.shard_sha256.get(shard)
        if expected is None:
            return (
                True  # written before shards carried checksums; read_rows still checks the format
            )
        try:
            return _sha256(path.read_bytes()) == expected
        except OSError:
            return False

    def _read_shard(self, shard: str) -> np.ndarray:
        """A shard's feature array, after checking its sha256; a clear DataError when damaged."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        path = self.root / shard
        redo = f"re-run `graft extract DATA --out {self.root}` to extract its images again"
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DataError(f"feature shard {path} cannot be read ({e.strerror}); {redo}.") from e
        expected = self.shard_sha256.get(shard)
        if expected is not None and _sha256(data) != expected:
            raise DataError(
                f"feature shard {path} does not match the sha256 recorded in {MANIFEST} "
                f"(damaged or replaced); {redo}."
            )
        try:
            return load(data)["features"]
        except (SafetensorError, KeyError) as e:
            raise DataError(
                f"feature shard {path} is not a readable safetensors feature file; {redo}."
            ) from e

    # ------------------------------------------------------------------ writing
    def write_shard(self, features: np.ndarray, entries: list[Entry]) -> str:
        """Write one shard atomically, then the manifest that lists it; return the shard name."""
        from safetensors.numpy import save_file

        name = f"shard-{self._shard_index:05d}.safetensors"
        self._shard_index += 1
        with atomic_path(self.root / name) as tmp:
            save_file({"features": np.ascontiguousarray(features, dtype=np.float32)}, str(tmp))
            self.shard_sha256[name] = _sha256(Path(tmp).read_bytes())
        for row, entry in enumerate(entries):
            entry.shard, entry.row = name, row
        self.entries.extend(entries)
        self.write_manifest()
        return name

    def write_manifest(self) -> None:
        """Rewrite ``manifest.json`` atomically with the current entries and shard checksums."""
        used = {e.shard for e in self.entries}
        write_json(
            self.root / MANIFEST,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "settings": self.settings,
                "classes": self.classes,
                "next_shard": self._shard_index,
                "num_images": len(self.entries),
                "skipped": [list(s) for s in self.skipped],
                "shards": {k: v for k, v in sorted(self.shard_sha256.items()) if k in used},
                "entries": [e.to_json() for e in self.entries],
            },
        )

    def remove_unused_shards(self) -> None:
        """Delete shard files that no entry refers to any more (after files changed or left)."""
        used = {e.shard for e in self.entries}
        for path in self.root.glob("shard-*.safetensors"):
            if path.name not in used:
                path.unlink(missing_ok=True)
                log.debug("removed unused shard %s", path.name)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_identity(path: str, known: dict[str, Entry]) -> tuple[str, int, int]:
    """``(sha256, size, mtime_ns)`` of ``path``; the stored hash is reused when size and mtime match."""
    st = os.stat(path)
    old = known.get(path)
    if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
        return old.sha256, st.st_size, st.st_mtime_ns
    return sha256_file(path), st.st_size, st.st_mtime_ns
