"""Numerical and resource failures: NaN/inf loss stops training with a clear message and keeps the
last good checkpoint; out of memory suggests a smaller batch; a full disk gives a clear error and
leaves earlier outputs intact.

Failures are injected through the trainer's ``callbacks`` (a data hook that poisons a batch, a
forward that raises out-of-memory) and at the ``graft.io`` level (``os.fsync`` failing with ENOSPC
for chosen files, as a full disk makes the final flush of a write fail).
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from .conftest import TINY_FIT, assert_clean_exit, clean_folder, run_cli

TINY = {
    "model": "test_efficientnet", "weights": "none", "image_size": 32, "batch_size": 8,
    "workers": 0, "progress": False, "val_split": 0.25, "recipe": "full", "epochs": 3, "seed": 0,
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("num") / "data", per_class=8)


class PoisonBatch(pl.Callback):
    """A data hook: from epoch ``epoch`` on, every input batch is ``value`` (NaN or inf)."""

    def __init__(self, epoch: int, value: float) -> None:
        self.epoch, self.value = epoch, value

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch >= self.epoch and batch is not None:
            batch[0].fill_(self.value)


class RaiseInForward(pl.Callback):
    """Makes the forward pass of the second training batch raise ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 1:
            raise self.error


def _finite_checkpoint_epoch(ckpt: Path) -> int:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    for name, tensor in state["state_dict"].items():
        if tensor.is_floating_point():
            assert torch.isfinite(tensor).all(), f"{ckpt.name}: {name} is not finite"
    return int(state["epoch"])


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(
    data: Path, tmp_path: Path, value: float
) -> None:
    from graft.errors import GraftError
    from graft.train import fit

    run = tmp_path / "run"
    with pytest.raises(GraftError, match=r"(?i)nan|inf|not finite") as info:
        fit(data, out=str(run), callbacks=[PoisonBatch(1, value)], **TINY)
    text = str(info.value)
    assert "epoch 1" in text and "last.ckpt" in text and "--lr" in text and "--resume" in text
    assert _finite_checkpoint_epoch(run / "checkpoints" / "last.ckpt") == 0
    assert not (run / "bundle").exists()


def test_cli_huge_learning_rate_stops_with_a_clear_message(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = run_cli("fit", data, *TINY_FIT, "--recipe", "full", "--epochs", "2", "--lr", "1e30",
                "--grad-clip", "0", "--out", run)  # fmt: skip
    assert_clean_exit(r, allowed=(2,))
    assert "nan" in r.err.lower() or "not finite" in r.err.lower(), r.err
    assert not (run / "bundle").exists()


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: "
                     "you tried to allocate 123456789 bytes. Buy new RAM! out of memory"),
    ],
    ids=["cuda-oom", "cpu-oom"],
)  # fmt: skip
def test_out_of_memory_suggests_a_smaller_batch(
    data: Path, tmp_path: Path, error: BaseException
) -> None:
    from graft.errors import GraftError
    from graft.train import fit

    with pytest.raises(GraftError, match=r"--batch-size 4") as info:
        fit(data, out=str(tmp_path / "run"), callbacks=[RaiseInForward(error)], **TINY)
    assert "out of memory" in str(info.value) and "--image-size" in str(info.value)
    assert ("--precision bf16-mixed" in str(info.value)) == isinstance(
        error, torch.OutOfMemoryError
    )


# ----------------------------------------------------------------------------------- disk full


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[str]]:
    """``disk_full("model.json")``: from now on, flushing any file whose name contains the text
    fails with ENOSPC (as the final fsync of a write does on a full disk). Returns the hits."""
    real_fsync = os.fsync
    hits: list[str] = []

    def arm(text: str) -> list[str]:
        def fsync(fd: int) -> None:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = ""
            if text in os.path.basename(target):
                hits.append(target)
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        return hits

    return arm


def _temp_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith((".tmp", ".old"))]


def test_disk_full_keeps_the_previous_output_file(data: Path, tmp_path: Path, disk_full) -> None:
    folder = tmp_path / "stats"
    out = folder / "stats.json"
    r = run_cli("stats", data, "--model", "test_efficientnet", "--no-progress", "--out", folder)
    assert_clean_exit(r, allowed=(0,))
    before = out.read_bytes()
    hits = disk_full("stats.json")
    r = run_cli(
        "stats", data, "--model", "test_efficientnet", "--no-progress", "--json", "--out", folder
    )
    assert hits
    assert_clean_exit(r, allowed=(2,))
    assert "disk full while writing" in r.err and "earlier outputs are intact" in r.err, r.err
    assert out.read_bytes() == before
    assert not _temp_leftovers(tmp_path)


def test_disk_full_while_saving_the_bundle_keeps_the_run(
    data: Path, tmp_path: Path, disk_full
) -> None:
    run = tmp_path / "run"
    hits = disk_full("model.json")
    r = run_cli("fit", data, *TINY_FIT, "--recipe", "full", "--epochs", "2", "--out", run)
    assert hits
    assert_clean_exit(r, allowed=(2,))
    assert "disk full while writing" in r.err, r.err
    assert not (run / "bundle").exists() and not _temp_leftovers(run)
    assert _finite_checkpoint_epoch(run / "checkpoints" / "last.ckpt") == 1
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()

    disk_full("no file has this name")  # space freed: the resume only writes what is missing
    r = run_cli("fit", "--resume", "--out", run)
    assert_clean_exit(r, allowed=(0,))
    from graft.bundle import load_bundle

    assert load_bundle(run / "bundle").classes == ["blue", "green", "red"]


def test_disk_full_while_extracting_keeps_stored_shards(
    data: Path, tmp_path: Path, disk_full
) -> None:
    from graft.features import extract
    from graft.features.store import FeatureStore
    from graft.io import DiskFullError

    out = tmp_path / "feats"
    disk_full("shard-00001")
    with pytest.raises(DiskFullError):
        extract(data, model="test_efficientnet", weights="none", image_size=32, batch_size=8,
                workers=0, out=out, shard_rows=8, progress=False)  # fmt: skip
    store = FeatureStore.load(out)
    assert {e.shard for e in store.entries} == {"shard-00000.safetensors"}
    assert not _temp_leftovers(out)
