"""Fixtures for the training tests: one CPU thread (the cores are shared), tiny runs."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)  # two threads on two shared cores slow tiny models down by 10x or more

TINY = {
    "model": "test_efficientnet",
    "weights": "none",
    "image_size": 32,
    "batch_size": 8,
    "workers": 0,
    "progress": False,
    "val_split": 0.25,
}


@pytest.fixture
def tiny_opts() -> dict:
    """Options for a seconds-long fit on the tiny generated folder."""
    return dict(TINY)


class StopAfter(pytest.importorskip("lightning.pytorch").Callback):
    """Simulates a crash: raises once epoch ``epoch`` has finished (its checkpoint written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated crash after epoch {self.epoch}")
