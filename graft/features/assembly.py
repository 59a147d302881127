"""The extraction loop's output side: what the store already holds, what to extract, the result.

:func:`run_extraction` reads each file's identity, reuses rows a matching store holds (resume),
extracts the rest through a :class:`graft.features.runner.Runner` (each rank its part under a
process group), writes shards and the manifest (rank 0) and returns the :class:`Features`.

Example:
    >>> run_extraction(store, samples, classes, settings, runner, shard_rows=1024)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time

import numpy as np

from graft import distributed
from graft.data.images import os_error_reason
from graft.errors import DataError
from graft.features.arrays import Features
from graft.features.store import Entry, file_identity
from graft.log import get_logger

log = get_logger("graft.features")


def _identities(samples, known) -> tuple[list, list, list[tuple[str, str]]]:
    """Samples whose bytes could be read, their identities, and ``(path, reason)`` for the others."""
    kept, idents, failed = [], [], []
    for sample in samples:
        try:
            ident = file_identity(sample[0], known)
        except OSError as e:  # symlink loop, permission denied, vanished since the scan
            failed.append((sample[0], os_error_reason(e)))
            continue
        kept.append(sample)
        idents.append(ident)
    if failed:
        log.warning("%d image files could not be read; first: %s (%s)", len(failed), *failed[0])
    return kept, idents, failed


def run_extraction(store, samples, classes, settings, runner, shard_rows, skipped=()) -> Features:
    """Extract what ``store`` lacks with ``runner``; the features of every readable sample (see above)."""
    known = {e.file: e for e in store.entries} if store else {}
    samples, idents, unreadable = _identities(samples, known)
    if not samples:
        raise DataError(
            f"none of the {len(unreadable)} image files could be read "
            f"(first: {unreadable[0][0]}: {unreadable[0][1]}); check their permissions."
        )
    stored = store.reusable(settings) if store else {}
    todo = [i for i, ident in enumerate(idents) if ident[0] not in stored]
    log.info(
        "%d images: %d stored, %d to extract", len(samples), len(samples) - len(todo), len(todo)
    )
    if store is not None:
        pending = set(todo)
        store.entries = [
            _entry(samples[i], idents[i], *stored[idents[i][0]])
            for i in range(len(samples))
            if i not in pending
        ]
    start = time.perf_counter()
    fresh = _extract_todo(store, samples, idents, todo, runner, shard_rows)
    seconds = time.perf_counter() - start
    if todo:
        log.info(
            "extracted %d images in %.1f s (%.1f img/s)",
            len(todo),
            seconds,
            len(todo) / max(seconds, 1e-9),
        )
    skipped = sorted({*skipped, *unreadable, *getattr(runner, "failed", {}).items()})
    return _assemble(store, samples, idents, stored, fresh, classes, settings, skipped)


def _sharded() -> bool:
    """True inside a process group of more than one rank: each rank extracts its own part."""
    return distributed.is_initialized() and distributed.world_size() > 1


def _extract_todo(store, samples, idents, todo, runner, shard_rows) -> dict[int, tuple]:
    """Extract the ``todo`` positions; return position -> (shard, row) or (None, array) in memory."""
    if _sharded():
        return _extract_sharded(store, samples, idents, todo, runner, shard_rows)
    located: dict[int, tuple] = {}
    pending_feats, pending_pos = [], []

    def flush() -> None:
        if not pending_pos:
            return
        feats = np.concatenate(pending_feats)
        if store is None:
            located.update({p: (None, f) for p, f in zip(pending_pos, feats, strict=True)})
        else:
            entries = [_entry(samples[p], idents[p], "", 0) for p in pending_pos]
            shard = store.write_shard(feats, entries)
            located.update({p: (shard, r) for r, p in enumerate(pending_pos)})
        pending_feats.clear()
        pending_pos.clear()

    files = [samples[i][0] for i in todo]
    for feats, idx in runner.batches(files):
        pending_feats.append(feats)
        pending_pos.extend(todo[i] for i in idx)
        if len(pending_pos) >= shard_rows:
            flush()
    flush()
    return located


def _extract_sharded(store, samples, idents, todo, runner, shard_rows) -> dict[int, tuple]:
    """Each rank extracts its contiguous part of ``todo``; the rows and the unreadable files are
    gathered in rank order. Rank 0 writes them to the store in ``todo`` order (the shards a
    one-process run writes); the other ranks keep them in memory."""
    mine = distributed.shard(todo)
    rows: dict[int, np.ndarray] = {}
    for feats, idx in runner.batches([samples[i][0] for i in mine]):
        rows.update({mine[i]: f for i, f in zip(idx, feats, strict=True)})
    parts = distributed.all_gather_object((rows, getattr(runner, "failed", {})))
    rows = {p: f for part, _ in parts for p, f in part.items()}
    runner.failed = {path: reason for _, failed in parts for path, reason in failed.items()}
    done = [p for p in todo if p in rows]
    if store is None or not distributed.is_rank_zero():
        return {p: (None, rows[p]) for p in done}
    located: dict[int, tuple] = {}
    for start in range(0, len(done), shard_rows):
        chunk = done[start : start + shard_rows]
        entries = [_entry(samples[p], idents[p], "", 0) for p in chunk]
        shard = store.write_shard(np.stack([rows[p] for p in chunk]), entries)
        located.update({p: (shard, r) for r, p in enumerate(chunk)})
    return located


def _entry(sample, ident, shard: str, row: int) -> Entry:
    path, label, split = sample
    sha, size, mtime = ident
    return Entry(path, label, split, sha, size, mtime, shard, row)


def _assemble(store, samples, idents, stored, fresh, classes, settings, skipped) -> Features:
    keep = [i for i in range(len(samples)) if i in fresh or idents[i][0] in stored]
    if store is None:
        features = np.stack([fresh[i][1] for i in keep]) if keep else np.zeros((0,), np.float32)
    elif not distributed.is_rank_zero():  # rank 0 writes the store; the rest wait for it
        distributed.barrier()
        features = _rows_in_memory(store, [fresh.get(i) or stored[idents[i][0]] for i in keep])
    else:
        store.entries = [
            _entry(samples[i], idents[i], *(fresh.get(i) or stored[idents[i][0]])) for i in keep
        ]
        store.skipped = [(p, r) for p, r in skipped]
        store.write_manifest()
        store.remove_unused_shards()
        features = store.read_rows([(e.shard, e.row) for e in store.entries])
        distributed.barrier()
    if skipped:
        log.warning("%d unreadable images were skipped (listed in the manifest)", len(skipped))
    return Features(
        features=features,
        files=[samples[i][0] for i in keep],
        labels=np.array([samples[i][1] for i in keep], dtype=np.int64),
        classes=list(classes),
        splits=[samples[i][2] for i in keep],
        meta=settings,
        path=os.fspath(store.root) if store else None,
    )


def _rows_in_memory(store, located: list[tuple]) -> np.ndarray:
    """Stack ``(None, array)`` rows kept in memory and ``(shard, row)`` rows read from the store."""
    on_disk = [(i, loc) for i, loc in enumerate(located) if loc[0] is not None]
    read = store.read_rows([loc for _, loc in on_disk]) if on_disk else None
    out: list[np.ndarray] = [loc[1] for loc in located]
    for k, (i, _) in enumerate(on_disk):
        out[i] = read[k]
    return np.stack(out) if out else np.zeros((0,), np.float32)
