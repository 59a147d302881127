"""The extraction loop's input side: images decoded in DataLoader workers, batched through a model.

:class:`Runner` yields ``(features, positions)`` per batch; unreadable images are collected in
``runner.failed`` (path -> reason) instead of stopping the run.

Example:
    >>> runner = Runner(reader, data_cfg, batch_size=64, workers=2, device="cpu", progress=False)  # doctest: +SKIP
    >>> for feats, positions in runner.batches(files): ...  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


class _Indexed(Dataset):
    """Decoded, transformed images with their position; unreadable ones carry the reason instead."""

    def __init__(self, files: list[str], transform: Any, in_chans: int) -> None:
        from graft.data import ImageDataset

        self.images = ImageDataset([(f, 0) for f in files], transform, in_chans=in_chans)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, str]:
        item = self.images[i]
        if item is None:  # the reason travels with the item: workers have their own dataset copy
            path = self.images.samples[i][0]
            return None, i, self.images.failed.get(path, "unreadable")
        return item[0], i, ""


def _collate(batch: list) -> tuple[torch.Tensor | None, torch.Tensor, list[tuple[int, str]]]:
    kept = [b for b in batch if b[0] is not None]
    failed = [(b[1], b[2]) for b in batch if b[0] is None]
    x = torch.stack([b[0] for b in kept]) if kept else None
    return x, torch.tensor([b[1] for b in kept], dtype=torch.long), failed


class Runner:
    """Batches images through the layer reader; yields ``(features, positions)`` per batch."""

    def __init__(self, reader, data_cfg, batch_size, workers, device, progress) -> None:
        from graft.data import build_transforms

        self.reader, self.batch_size, self.workers = reader, batch_size, workers
        self.device, self.progress = device, progress
        self.in_chans = int(data_cfg["input_size"][0])
        self.transform = build_transforms(data_cfg, train=False)

    def batches(self, files: list[str]):
        from tqdm.auto import tqdm

        dataset = _Indexed(files, self.transform, self.in_chans)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.workers,
            collate_fn=_collate,
            persistent_workers=False,
        )
        bar = tqdm(total=len(files), unit="img", desc="extract", disable=not self.progress or None)
        self.failed = {}
        try:
            with torch.inference_mode():
                for x, idx, failed in loader:
                    self.failed.update({files[i]: reason for i, reason in failed})
                    bar.update(len(idx) + len(failed))
                    if x is not None:
                        yield self.reader(x.to(self.device)).cpu().numpy(), idx.numpy()
        finally:
            bar.close()
