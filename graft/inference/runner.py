"""Batched inference: images in, class probabilities out, bad files reported and skipped.

Works with every bundle kind: it only calls :meth:`graft.bundle.Bundle.logits` on batches made with
the bundle's own preprocessing (``data_config``).

Example:
    >>> out = run_inference(load_bundle("bundle"), ["a.jpg", "b.jpg"])  # doctest: +SKIP
    >>> out.probs.shape, out.failed  # doctest: +SKIP
    ((2, 3), {})
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from graft.bundle import Bundle
from graft.data.dataset import ImageDataset, collate_skip
from graft.data.transforms import build_transforms
from graft.errors import ConfigError


@dataclass
class InferenceOutput:
    """``probs[i]`` belongs to input ``index[i]``; ``failed`` maps input index -> reason."""

    probs: np.ndarray
    index: list[int]
    failed: dict[int, str] = field(default_factory=dict)


class _ImagesDataset(Dataset):
    """In-memory PIL images -> ``(tensor, position)``."""

    def __init__(self, images: Sequence[Image.Image], transform: Any) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), i


def eval_transform(bundle: Bundle) -> Any:
    """The bundle's evaluation transform (PIL image -> normalised tensor)."""
    cfg = bundle.data_config
    return build_transforms(cfg, train=False, in_chans=int(cfg["input_size"][0]))


def run_inference(
    bundle: Bundle,
    inputs: Sequence[str] | Sequence[Image.Image],
    batch_size: int = 64,
    tta: bool = False,
    workers: int = 0,
) -> InferenceOutput:
    """Class probabilities for file paths or PIL images, ``batch_size`` at a time.

    ``tta=True`` averages the probabilities of each image and its horizontal mirror.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if workers < 0:
        raise ConfigError(f"workers must be 0 (decode in this process) or more, got {workers}")
    transform = eval_transform(bundle)
    if inputs and isinstance(inputs[0], Image.Image):
        dataset: Any = _ImagesDataset(inputs, transform)
    else:
        channels = int(bundle.data_config["input_size"][0])
        dataset = ImageDataset(
            [(str(p), i) for i, p in enumerate(inputs)], transform, in_chans=channels
        )
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate_skip
    )
    probs, index = [], []
    with _quiet("graft.data"):  # each unreadable input is reported once, by the caller
        for batch in loader:
            if batch is None:
                continue
            x, positions = batch
            probs.append(batch_probabilities(bundle, x, tta))
            index += positions.tolist()
    failed = _failures(dataset, len(inputs), set(index))
    num_classes = bundle.num_classes
    stacked = np.concatenate(probs) if probs else np.zeros((0, num_classes), np.float32)
    return InferenceOutput(stacked, index, failed)


def batch_probabilities(bundle: Bundle, x: torch.Tensor, tta: bool = False) -> np.ndarray:
    """Softmax probabilities of one preprocessed batch (flip-averaged with ``tta``)."""
    probs = bundle.logits(x).softmax(dim=1)
    if tta:
        probs = (probs + bundle.logits(x.flip(-1)).softmax(dim=1)) / 2
    return probs.numpy()


def _failures(dataset: Any, n: int, done: set[int]) -> dict[int, str]:
    reasons = getattr(dataset, "failed", {})
    samples = getattr(dataset, "samples", None)
    out = {}
    for i in range(n):
        if i not in done:
            path = samples[i][0] if samples else None
            out[i] = reasons.get(path, "unreadable")
    return out


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors from logger ``name`` while the block runs (loader workers fork inside it)."""
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved)
