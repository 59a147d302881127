"""Preprocessed image batches for export checks and int8 calibration, taken from a data folder.

Example:
    >>> x = check_batch(bundle, "data/pets", n=16)  # doctest: +SKIP
    >>> x.shape  # doctest: +SKIP
    torch.Size([16, 3, 224, 224])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from graft.bundle import Bundle
from graft.data.dataset import ImageDataset, collate_skip
from graft.data.scan import SPLIT_NAMES
from graft.errors import DataError
from graft.inference.inputs import expand_paths
from graft.inference.runner import eval_transform


def image_paths(source: str | os.PathLike, prefer: str, limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` images from ``source`` (files/folder/glob); from its ``prefer`` split folder if it has one.

    A seeded random subset when there are more; sorted order otherwise.
    """
    root = _split_root(source, prefer)
    files = _files(source, root)
    if len(files) > limit:
        rng = np.random.default_rng(seed)
        files = [files[i] for i in sorted(rng.choice(len(files), limit, replace=False))]
    return files


def calibration_paths(source: str | os.PathLike, limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` images for int8 calibration: from the ``train`` split when ``source`` has one,
    stratified (an equal share from each class folder, taken in turn), seeded.

    Classes stay balanced even when the folder is not, so no class's activation ranges are missed.

    Example:
        >>> len(calibration_paths("data/animals", 200))  # doctest: +SKIP
        200
    """
    root = _split_root(source, "train")
    groups: dict[str, list[str]] = {}
    for f in _files(source, root):
        rel = Path(f).relative_to(root).parts if Path(f).is_relative_to(root) else ()
        groups.setdefault(rel[0] if len(rel) > 1 else "", []).append(f)
    rng = np.random.default_rng(seed)
    queues = [
        [files[i] for i in rng.permutation(len(files))] for _, files in sorted(groups.items())
    ]
    picked: list[str] = []
    for rank in range(max(map(len, queues))):
        picked += [q[rank] for q in queues if rank < len(q)]
    return picked[:limit]


def _split_root(source: str | os.PathLike, prefer: str) -> Path:
    """``source``'s ``prefer`` split folder (else its train split, else any split), or ``source`` itself."""
    root = Path(source)
    if root.is_dir():
        splits = {
            SPLIT_NAMES[p.name.lower()]: p
            for p in root.iterdir()
            if p.is_dir() and p.name.lower() in SPLIT_NAMES
        }
        if splits:
            root = splits.get(prefer) or splits.get("train") or next(iter(splits.values()))
    return root


def _files(source: str | os.PathLike, root: Path) -> list[str]:
    files, _ = expand_paths([root])
    if not files:
        raise DataError(f"no images found in {source} (looked in {root}); give a folder of images.")
    return files


def iter_batches(bundle: Bundle, paths: list[str], batch_size: int = 16) -> Iterator[torch.Tensor]:
    """Batches of preprocessed images (the bundle's eval transform); unreadable files are skipped."""
    channels = int(bundle.data_config["input_size"][0])
    dataset = ImageDataset(
        [(p, i) for i, p in enumerate(paths)], eval_transform(bundle), in_chans=channels
    )
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_skip):
        if batch is not None:
            yield batch[0]


def check_batch(
    bundle: Bundle, source: str | os.PathLike | None, n: int = 16, seed: int = 0
) -> torch.Tensor:
    """``n`` real images from ``source`` (its test split preferred), or seeded random inputs when ``None``."""
    if source is None:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((n, *map(int, bundle.data_config["input_size"])), generator=generator)
    batches = list(iter_batches(bundle, image_paths(source, "test", n, seed), batch_size=n))
    if not batches:
        raise DataError(f"none of the sampled images in {source} could be read")
    return torch.cat(batches)
