"""The LightningDataModule: scanned splits -> train/val/test loaders, reproducible across restarts.

Shuffling and augmentation depend only on (seed, epoch, index): the sampler yields ``epoch * n + i``
and the dataset seeds the transform's random draws (torch, numpy and ``random``) from that key. A run
resumed at epoch k therefore sees exactly the batches and augmentations an uninterrupted run would,
with or without workers: nothing depends on a worker's own seed. The sampler takes its epoch when the
loader is built (every epoch), not only from ``set_epoch``: on resume Lightning starts the workers'
prefetch before it calls ``set_epoch``, and the first resumed epoch then replayed epoch 0's order.

While a phase trains only layers above a frozen prefix whose input is not augmented (``auto`` and
``head``), the train loader serves that prefix's outputs, computed once (see
:mod:`graft.train.frozen_cache`); Lightning reloads the train loader every epoch to switch.

Example:
    >>> dm = FitDataModule(splits, data_cfg, batch_size=32)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from graft.data import ImageDataset, build_transforms, class_counts, collate_skip

_MIX = 0x9E3779B97F4A7C15


class EpochSampler(Sampler[int]):
    """Shuffles (or draws class-balanced) indices from (seed, epoch); yields ``epoch * n + index``."""

    def __init__(
        self,
        n: int,
        seed: int = 0,
        weights: Sequence[float] | None = None,
        shuffle: bool = True,
        epoch: int = 0,
    ) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.weights = torch.as_tensor(weights, dtype=torch.double) if weights is not None else None
        self.epoch = epoch

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        base = self.epoch * self.n
        return iter((base + order).tolist())


class SeededDataset(Dataset):
    """Wraps a dataset: item ``epoch * n + i`` is item ``i`` with random draws seeded by (seed, epoch, i)."""

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> Any:
        n = len(self.dataset)
        generator = torch.default_generator  # the CPU generator transforms draw from
        saved = generator.get_state(), random.getstate(), np.random.get_state()
        seed = (self.seed * _MIX + key) % (2**63)  # (torch.manual_seed / fork_rng: ~3 ms per item)
        generator.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % (2**32))
        try:
            return self.dataset[key % n]
        finally:
            generator.set_state(saved[0])
            random.setstate(saved[1])
            np.random.set_state(saved[2])


class _Indexed(Dataset):
    """Maps the sampler's ``epoch * n + i`` keys back to item ``i`` (no random draws involved)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> Any:
        return self.dataset[key % len(self.dataset)]


class FitDataModule(pl.LightningDataModule):
    """Loaders for ``splits`` (a :class:`graft.data.Splits`) with ``data_cfg`` preprocessing."""

    def __init__(
        self,
        splits: Any,
        data_cfg: dict[str, Any],
        batch_size: int = 32,
        augment: str = "light",
        flip: bool = True,
        in_chans: int = 3,
        balance: str = "none",
        cache_images: bool = False,
        workers: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        self.splits, self.data_cfg = splits, data_cfg
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.balance, self.workers = balance, default_workers() if workers is None else workers
        cache_size = (
            int(max(data_cfg["input_size"][-2:]) / float(data_cfg.get("crop_pct", 1.0))) + 1
        )
        opts = {"in_chans": in_chans, "cache_images": cache_images, "cache_size": cache_size}
        train_tf = build_transforms(
            data_cfg, train=True, augment=augment, flip=flip, in_chans=in_chans
        )
        self.eval_tf = build_transforms(data_cfg, train=False, in_chans=in_chans)
        self.train_set = ImageDataset(splits.train, train_tf, **opts)
        self.val_set = ImageDataset(splits.val, self.eval_tf, **opts) if splits.val else None
        self.test_set = (
            ImageDataset(splits.test, self.eval_tf, in_chans=in_chans) if splits.test else None
        )
        self.plain_train_set = ImageDataset(splits.train, self.eval_tf, **opts)
        self.cached_train: Dataset | None = None  # frozen-prefix outputs, set by fit()
        self.cached_epochs: range = range(0)

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        if self.cached_train is not None and epoch in self.cached_epochs:
            return self._loader(self.cached_train, train=True, workers=0, seeded=False, epoch=epoch)
        return self._loader(self.train_set, train=True, epoch=epoch)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, train=False) if self.val_set is not None else []

    def test_dataloader(self) -> DataLoader | list:
        return self._loader(self.test_set, train=False) if self.test_set is not None else []

    def eval_loader(self, samples_set: Dataset) -> DataLoader:
        """An ordered, unaugmented loader over ``samples_set``."""
        return self._loader(samples_set, train=False)

    def _loader(
        self,
        dataset: Dataset,
        train: bool,
        workers: int | None = None,
        seeded: bool = True,
        epoch: int = 0,
    ) -> DataLoader:
        workers = self.workers if workers is None else workers
        sampler = None
        if train:
            weights = self._balanced_weights() if self.balance == "sampler" else None
            sampler = EpochSampler(len(dataset), self.seed, weights, epoch=epoch)
            dataset = SeededDataset(dataset, self.seed) if seeded else _Indexed(dataset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=collate_skip,
            drop_last=train and self._drop_last(len(dataset)),
        )

    def _drop_last(self, n: int) -> bool:
        """Drop an incomplete last training batch when asked (mixup pairs), or when it would hold
        a single image: BatchNorm in train mode cannot normalise one value per channel (a 1x1 map
        after the last stage) and fails. Under DDP each rank's share (``ceil(n / world)``) counts.
        """
        if n <= self.batch_size:
            return False
        world = getattr(self.trainer, "world_size", 1) if self.trainer is not None else 1
        per_rank = -(-n // max(1, int(world)))
        return self.drop_last or (per_rank > self.batch_size and per_rank % self.batch_size == 1)

    def _balanced_weights(self) -> list[float]:
        labels = [y for _, y in self.splits.train]
        counts = class_counts(labels, len(self.splits.classes))
        return [1.0 / counts[y] for y in labels]


def default_workers() -> int:
    """Loader processes: one per spare core, at most 4 (0 on a single core)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
