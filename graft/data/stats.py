"""Dataset statistics in one streaming pass: exact mean/std, counts, sizes, modes, duplicates, corrupt files.

:func:`dataset_stats` decodes every image once (in parallel, with a progress bar). Pixel statistics
are accumulated as exact integer sums per channel (from 256-bin histograms), so memory does not
grow with the number of pixels and the result equals numpy over all decoded pixels. Statistics are
computed in RGB as a 3-channel model sees the images: grayscale images count as three equal
channels; values are on the [0, 1] scale used by ``Normalize``.

It then compares them with a model's pretrained mean/std and recommends a normalization:

- ``pretrained`` (the default): the backbone's weights were trained on images normalized with these
  values, so its first layers expect them. Recommended for natural photos and whenever the dataset's
  statistics are close to them.
- ``dataset``: recommended when the dataset is far from them (a channel mean more than
  :data:`MEAN_SHIFT_LIMIT` pretrained standard deviations away, or a std ratio outside
  :data:`STD_RATIO_RANGE`): medical scans, X-rays, silhouettes, microscopy. The thresholds are a
  heuristic; ``bench/bench_norm.py`` measures both choices on the animals sample.

Example:
    >>> s = dataset_stats("data/pets", model="efficientnet_lite0")  # doctest: +SKIP
    >>> s.mean, s.recommendation  # doctest: +SKIP
    ([0.48, 0.45, 0.39], 'pretrained')
"""

from __future__ import annotations

import math
import os
import statistics
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from graft.data.normalization_advice import (  # re-exported: their home before the split
    GRAYSCALE_MAJORITY,
    MEAN_SHIFT_LIMIT,
    STD_RATIO_RANGE,
    pretrained_cfg_for,
    recommend_normalization,
)
from graft.data.pixelstats import ChunkStats, chunk_stats
from graft.data.scan import Splits, scan_dataset
from graft.data.verify import default_workers
from graft.errors import DataError
from graft.log import get_logger

DEFAULT_MODEL = "efficientnet_lite0"
SIZE_BUCKETS = (32, 64, 128, 256, 512, 1024)
CHUNK = 64

log = get_logger("graft.data")

__all__ = [
    "DEFAULT_MODEL",
    "GRAYSCALE_MAJORITY",
    "MEAN_SHIFT_LIMIT",
    "STD_RATIO_RANGE",
    "DatasetStats",
    "dataset_stats",
    "exact_mean_std",
    "normalization_stats",
    "pretrained_cfg_for",
    "recommend_normalization",
]


@dataclass
class DatasetStats:
    """What a dataset looks like; :meth:`to_dict` for JSON, :meth:`format` for the terminal."""

    source: str
    num_images: int
    classes: list[str]
    counts: dict[str, dict[str, int]]
    mean: list[float]
    std: list[float]
    pixels: int
    sizes: dict[str, Any]
    grayscale: int
    modes: dict[str, int]
    duplicates: list[list[str]] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    model: str | None = None
    pretrained_mean: list[float] | None = None
    pretrained_std: list[float] | None = None
    recommendation: str = "pretrained"
    reason: str = ""

    @property
    def grayscale_share(self) -> float:
        return self.grayscale / self.num_images if self.num_images else 0.0

    @property
    def imbalance(self) -> float:
        """Largest over smallest class count (all splits); 1.0 is perfectly balanced."""
        totals = [sum(split.get(c, 0) for split in self.counts.values()) for c in self.classes]
        return max(totals) / max(1, min(totals)) if totals else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (with the derived grayscale share and imbalance)."""
        out = asdict(self)
        out["corrupt"] = [list(item) for item in self.corrupt]
        out["grayscale_share"] = round(self.grayscale_share, 6)
        out["imbalance"] = round(self.imbalance, 4)
        return out

    def format(self) -> str:
        """A human-readable report."""
        return "\n".join(_report_lines(self))


def dataset_stats(
    source: str | os.PathLike | Splits,
    model: str | Mapping[str, Any] | None = DEFAULT_MODEL,
    workers: int | None = None,
    progress: bool = True,
    executor: str = "thread",
    distributed: bool = True,
) -> DatasetStats:
    """Compute :class:`DatasetStats` for a folder, CSV or scanned :class:`Splits`.

    ``model`` is a model name or a ``pretrained_cfg`` dict to compare with (``None``: no comparison).
    ``executor`` is ``"thread"`` (default: Pillow releases the GIL while decoding, and nothing is
    forked), ``"process"`` or ``"serial"``.

    Inside a ``torch.distributed`` process group (``torchrun``, ``graft stats --devices N``), each
    rank decodes a contiguous shard of the images and the exact integer sums are all-reduced (the
    per-image facts gathered in rank order): every rank returns the same result as one process.
    ``distributed=False`` computes everything in this process even inside a process group: for
    callers that run on one rank only (the run report), where a collective would wait forever.

    Example:
        >>> s = dataset_stats("data/xrays", model="efficientnet_lite0", progress=False)  # doctest: +SKIP
        >>> s.recommendation, s.reason  # doctest: +SKIP
        ('dataset', 'the images are grayscale ...')
    """
    splits = source if isinstance(source, Splits) else scan_dataset(source, verify=False)
    paths = [p for p, _ in splits.all_samples()]
    rank, world = _process_group() if distributed else (0, 1)
    mine = paths[len(paths) * rank // world : len(paths) * (rank + 1) // world]
    total = _accumulate(mine, workers, progress and rank == 0, executor)
    if world > 1:
        total = _reduce_across_ranks(total)
    stats = _finish(splits, total)
    if model is not None:
        cfg = model if isinstance(model, Mapping) else pretrained_cfg_for(model)
        name = model if isinstance(model, str) else str(cfg.get("architecture", "model"))
        _compare(stats, name, cfg)
    return stats


def normalization_stats(
    splits: Splits, workers: int | None = None, progress: bool = True
) -> dict[str, list[float]]:
    """Mean and std of the training images only, for ``normalization="dataset"`` (store them with the model).

    Example:
        >>> splits = scan_dataset("data/xrays", val_split=0.2)  # doctest: +SKIP
        >>> resolve_data_config(cfg, normalization="dataset", dataset_stats=normalization_stats(splits))  # doctest: +SKIP
    """
    train_only = Splits(
        classes=list(splits.classes), train=list(splits.train), source=splits.source
    )
    stats = dataset_stats(train_only, model=None, workers=workers, progress=progress)
    return {"mean": stats.mean, "std": stats.std}


def exact_mean_std(sums: Sequence[int], sumsq: Sequence[int], pixels: int, scale: int = 255):
    """Per-channel mean and (population) std on the [0, 1] scale from exact integer sums.

    Example:
        >>> exact_mean_std([0 + 255], [0 + 255**2], 2)
        ([0.5], [0.5])
    """
    if pixels <= 0:
        raise DataError("no readable pixels: every image failed to decode")
    means, stds = [], []
    for s, ss in zip(sums, sumsq, strict=True):
        var = Fraction(pixels * ss - s * s, pixels * pixels * scale * scale)
        means.append(float(Fraction(s, pixels * scale)))
        stds.append(math.sqrt(var))
    return means, stds


def _process_group() -> tuple[int, int]:
    """(rank, world size) of a running ``torch.distributed`` process group, else (0, 1)."""
    import sys

    if "torch.distributed" not in sys.modules:  # nothing can be running: keep torch unimported
        return 0, 1
    from graft import distributed

    if not distributed.is_initialized():
        return 0, 1
    return distributed.rank(), distributed.world_size()


def _reduce_across_ranks(part: ChunkStats) -> ChunkStats:
    """Every rank's :class:`ChunkStats` summed: exact integer all-reduce, facts in rank order."""
    from graft import distributed

    sums = distributed.all_reduce_sum([*part.sums, *part.sumsq, part.pixels, part.grayscale])
    facts = distributed.all_gather_object((part.sizes, part.modes, part.hashes, part.failed))
    total = ChunkStats(sums=sums[0:3], sumsq=sums[3:6], pixels=sums[6], grayscale=sums[7])
    for sizes, modes, hashes, failed in facts:
        total.merge(ChunkStats(sums=[0] * 3, sumsq=[0] * 3, sizes=sizes, modes=modes,
                               hashes=hashes, failed=failed))  # fmt: skip
    return total


def _accumulate(paths: list[str], workers: int | None, progress: bool, executor: str) -> ChunkStats:
    from tqdm.auto import tqdm

    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    total = ChunkStats()
    with tqdm(total=len(paths), desc="stats", unit="img", disable=not progress) as bar:
        for part in _map_chunks(chunks, workers or default_workers(), executor):
            total.merge(part)
            bar.update(len(part.sizes) + len(part.failed))
    return total


def _map_chunks(chunks: list[list[str]], workers: int, executor: str) -> Iterator[ChunkStats]:
    if executor not in ("process", "thread", "serial"):
        raise DataError(f"executor must be 'process', 'thread' or 'serial', got {executor!r}")
    if executor == "serial" or workers <= 1 or len(chunks) <= 1:
        yield from map(chunk_stats, chunks)
        return
    pool_cls: type[Executor] = ProcessPoolExecutor if executor == "process" else ThreadPoolExecutor
    with pool_cls(workers) as pool:
        window: deque = deque()
        for chunk in chunks:  # a bounded window of pending chunks keeps memory flat
            window.append(pool.submit(chunk_stats, chunk))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _finish(splits: Splits, total: ChunkStats) -> DatasetStats:
    if total.failed:
        log.warning(
            "%d image(s) could not be decoded and were left out of the statistics",
            len(total.failed),
        )
    mean, std = exact_mean_std(total.sums, total.sumsq, total.pixels)
    return DatasetStats(
        source=splits.source,
        num_images=len(total.sizes),
        classes=list(splits.classes),
        counts=_counts(splits, {p for p, _ in total.failed}),
        mean=mean,
        std=std,
        pixels=total.pixels,
        sizes=_size_summary(total.sizes),
        grayscale=total.grayscale,
        modes=dict(sorted(total.modes.items())),
        duplicates=_duplicates(total.hashes),
        corrupt=[*splits.skipped, *total.failed],
    )


def _counts(splits: Splits, failed: set[str]) -> dict[str, dict[str, int]]:
    out = {}
    for split in ("train", "val", "test"):
        samples = [s for s in getattr(splits, split) if s[0] not in failed]
        if samples or split == "train":
            counts = {name: 0 for name in splits.classes}
            for _, label in samples:
                counts[splits.classes[label]] += 1
            out[split] = counts
    return out


def _size_summary(sizes: list[tuple[int, int]]) -> dict[str, Any]:
    if not sizes:
        return {}
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    edges = (0, *SIZE_BUCKETS, math.inf)
    shorter = [min(w, h) for w, h in sizes]
    buckets = {}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        label = f"<{hi}" if lo == 0 else (f">={lo}" if hi == math.inf else f"{lo}-{hi - 1}")
        buckets[label] = sum(1 for s in shorter if lo <= s < hi)
    return {
        "width": _spread(widths),
        "height": _spread(heights),
        "shorter_side_buckets": buckets,
        "distinct_sizes": len(set(sizes)),
    }


def _spread(values: list[int]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _duplicates(hashes: list[tuple[bytes, str]]) -> list[list[str]]:
    groups: dict[bytes, list[str]] = {}
    for digest, path in hashes:
        groups.setdefault(digest, []).append(path)
    return sorted(sorted(paths) for paths in groups.values() if len(paths) > 1)


def _compare(stats: DatasetStats, name: str, cfg: Mapping[str, Any]) -> None:
    pm, ps = [float(v) for v in cfg["mean"]], [float(v) for v in cfg["std"]]
    if len(pm) == 1:
        pm, ps = pm * 3, ps * 3
    stats.model, stats.pretrained_mean, stats.pretrained_std = name, pm, ps
    stats.recommendation, stats.reason = recommend_normalization(
        stats.mean, stats.std, stats.grayscale_share, pm, ps
    )


def _fmt(values: Sequence[float] | None) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values or ()) + ")"


def _report_lines(s: DatasetStats) -> list[str]:
    lines = [
        f"dataset: {s.source}",
        f"images: {s.num_images} readable, {len(s.corrupt)} corrupt/unreadable",
    ]
    for split, counts in s.counts.items():
        lines.append(f"{split}: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    lines.append(f"class imbalance (largest/smallest): {s.imbalance:.2f}")
    if s.sizes:
        w, h = s.sizes["width"], s.sizes["height"]
        lines.append(
            f"width min/median/max: {w['min']}/{w['median']:g}/{w['max']}, height {h['min']}/{h['median']:g}/{h['max']}"
        )
        lines.append(
            "shorter side: "
            + ", ".join(f"{k}: {v}" for k, v in s.sizes["shorter_side_buckets"].items() if v)
        )
    lines.append(f"grayscale: {s.grayscale} ({s.grayscale_share:.1%}); modes: {s.modes}")
    lines.append(f"mean (RGB, 0-1): {_fmt(s.mean)}  std: {_fmt(s.std)}  over {s.pixels:,} pixels")
    lines.append(
        f"exact duplicates: {sum(len(g) - 1 for g in s.duplicates)} extra copies in {len(s.duplicates)} groups"
    )
    for group in s.duplicates[:5]:
        lines.append("  " + " == ".join(Path(p).name for p in group))
    for path, reason in s.corrupt[:10]:
        lines.append(f"  corrupt: {path} ({reason})")
    if s.model:
        lines.append(
            f"{s.model} pretrained mean: {_fmt(s.pretrained_mean)}  std: {_fmt(s.pretrained_std)}"
        )
        lines.append(f"recommended normalization: {s.recommendation} - {s.reason}")
    return lines
