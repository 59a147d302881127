"""A run folder's promises: exact resume with loader workers, one writer, resume checks, no
half-made folders.

The crashes here are in-process (a callback raises at the end of an epoch, before that epoch's
checkpoint); the SIGKILLed subprocess variants are in ``test_kills.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from safetensors.torch import load_file

from graft.train import fit
from graft.train.resume_check import ResumeConflictError
from graft.train.run_lock import LOCK_NAME, RunLock, RunLockedError

from .conftest import PYTHON, TINY_FIT, clean_folder, run_cli, subprocess_env

EXACT = {
    "model": "test_efficientnet", "weights": "none", "image_size": 32, "batch_size": 8,
    "workers": 2, "progress": False, "val_split": 0.25, "recipe": "full", "epochs": 4,
    "seed": 0, "augment": "light", "dropout": 0.2, "report": False,
}  # fmt: skip
COMPARED = ("val_loss", "val_acc", "epochs")


class CrashAt(pl.Callback):
    """Raises at the end of epoch ``epoch``, before its checkpoint (Lightning runs checkpoint
    callbacks last): the resume restarts that epoch from the previous epoch's ``last.ckpt``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated crash in epoch {self.epoch}")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("promises") / "data", per_class=8)


@pytest.fixture(scope="module")
def uninterrupted(data: Path, tmp_path_factory: pytest.TempPathFactory):
    return fit(data, out=str(tmp_path_factory.mktemp("ref") / "run"), **EXACT)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "bundle" / "model.safetensors"))


@pytest.mark.parametrize("crash_epoch", [1, 2], ids=["in-epoch-1", "in-epoch-2"])
def test_resume_with_two_workers_is_exact(data, uninterrupted, tmp_path, crash_epoch):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(data, out=str(run), callbacks=[CrashAt(crash_epoch)], **EXACT)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == crash_epoch - 1
    assert (run / "failed.txt").read_text().count("--resume") == 1
    resumed = fit(out=str(run), resume=True, workers=2)
    a, b = _weights(uninterrupted.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    for key in COMPARED:
        assert resumed.metrics[key] == uninterrupted.metrics[key], key
    assert [h["train_loss_epoch"] for h in resumed.history] == [
        h["train_loss_epoch"] for h in uninterrupted.history
    ]
    assert not (run / "failed.txt").exists() and not (run / LOCK_NAME).exists()


# ------------------------------------------------------------------------------ resume checks


@pytest.fixture(scope="module")
def crashed(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("crashed") / "run"
    with pytest.raises(RuntimeError):
        fit(data, out=str(run), callbacks=[CrashAt(1)], **{**EXACT, "workers": 0})
    return run


def test_resume_with_another_image_size_names_it(crashed):
    before = (crashed / "config.yaml").read_text()
    with pytest.raises(ResumeConflictError, match=r"image_size: 32 in the run, 64 now"):
        fit(out=str(crashed), resume=True, image_size=64)
    assert (crashed / "config.yaml").read_text() == before  # nothing rewritten


def test_resume_with_other_data_names_it(crashed, tmp_path):
    other = clean_folder(tmp_path / "other", per_class=8, seed=1)
    r = run_cli("fit", other, "--resume", "--out", crashed)
    assert r.code == 2 and not r.traceback, str(r)
    assert r.err.count("\n") == 1 and "data: " in r.err and "--resume-force" in r.err, r.err


def test_changed_classes_are_caught_from_the_checkpoint(crashed, tmp_path):
    """config.yaml agrees (same folder), but the folder's classes changed since the checkpoint."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(crashed, tmp_path / "run")
    run = tmp_path / "run"
    original = json.loads(json.dumps(torch.load(run / "checkpoints" / "last.ckpt",
                                                weights_only=True)["graft_run"]))  # fmt: skip
    clean_folder(data, per_class=8)
    (data / "blue").rename(data / "navy")
    cfg = (run / "config.yaml").read_text().replace(original["data"], str(data))
    (run / "config.yaml").write_text(cfg)
    with pytest.raises(ResumeConflictError) as err:
        fit(out=str(run), resume=True)
    assert "classes: " in str(err.value) and "data: " in str(err.value)


def test_resume_force_continues_with_a_warning(data, tmp_path, caplog):
    run = tmp_path / "run"
    opts = {**EXACT, "workers": 0, "epochs": 2}
    with pytest.raises(RuntimeError):
        fit(data, out=str(run), callbacks=[CrashAt(1)], **opts)
    result = fit(out=str(run), resume=True, resume_force=True, batch_size=4)
    assert result.bundle.is_dir()
    assert "batch_size: 8 in the run, 4 now" in caplog.text


def test_execution_options_may_change_on_resume(crashed, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(crashed, run)
    result = fit(out=str(run), resume=True, workers=1, progress=False, report=False)
    assert result.bundle.is_dir()


# --------------------------------------------------------------------------------- one writer


def test_two_concurrent_fits_into_one_folder(data, tmp_path):
    run = tmp_path / "run"
    args = ["fit", str(data), *TINY_FIT, "--recipe", "head", "--epochs", "2", "--out", str(run)]
    procs = [
        subprocess.Popen([PYTHON, "-m", "graft", *args], env=subprocess_env(), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "is in use by another graft run (PID" in loser and "Traceback" not in loser
    winner = next(p for p, (code, _) in zip(procs, results, strict=True) if code == 0)
    assert f"PID {winner.pid} " in loser
    from graft.bundle import load_bundle

    load_bundle(run / "bundle")  # the winner's run is whole
    assert not (run / LOCK_NAME).exists() and not (run / "logs-1").exists()


def test_second_writer_is_refused_and_names_the_first(data, tmp_path):
    run = tmp_path / "run"
    with RunLock(run, "graft fit"):
        r = run_cli("fit", data, *TINY_FIT, "--recipe", "head", "--epochs", "1", "--out", run)
        assert r.code == 2 and not r.traceback, str(r)
        assert f"PID {os.getpid()} on host {socket.gethostname()}" in r.err
        assert not (run / "config.yaml").exists()
    assert not (run / LOCK_NAME).exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_stale_lock_is_replaced(data, tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    lock = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "earlier"}
    (run / LOCK_NAME).write_text(json.dumps(lock))
    fit(data, out=str(run), **{**EXACT, "workers": 0, "recipe": "head", "epochs": 1})
    assert "stale lock" in caplog.text
    assert (run / "bundle").is_dir() and not (run / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_kept(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "t"}))
    with pytest.raises(RunLockedError, match="on host elsewhere.*delete"):
        RunLock(run).acquire()
    assert (run / LOCK_NAME).exists()


# ----------------------------------------------------------------------------- failed runs


def test_a_failed_new_run_leaves_no_folder(data, tmp_path):
    run = tmp_path / "new" / "run"
    r = run_cli("fit", data, *TINY_FIT, "--model", "test_efficientnt", "--out", run)
    assert r.code == 2 and not r.traceback, str(r)
    assert not run.exists()


def test_a_failed_run_in_an_existing_folder_says_why(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    r = run_cli("fit", data, *TINY_FIT, "--model", "test_efficientnt", "--out", run)
    assert r.code == 2, str(r)
    note = (run / "failed.txt").read_text()
    assert "test_efficientnt" in note and "can be reused" in note
    r = run_cli("fit", data, *TINY_FIT, "--recipe", "head", "--epochs", "1", "--out", run)
    assert r.code == 0, str(r)
    assert not (run / "failed.txt").exists()


def test_a_lock_whose_pid_was_reused_is_stale(tmp_path):
    """PID 1 runs, but it started long before this lock's holder did: the holder is gone."""
    from graft.train.run_lock import _process_start

    run = tmp_path / "run"
    run.mkdir()
    start = _process_start(1)
    if start is None:
        pytest.skip("no /proc here")
    lock = {"pid": 1, "host": socket.gethostname(), "started": "t", "proc_start": start + 1}
    (run / LOCK_NAME).write_text(json.dumps(lock))
    with RunLock(run) as held:
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid() and held.held
    lock["proc_start"] = start  # the real holder, still running: kept
    (run / LOCK_NAME).write_text(json.dumps(lock))
    with pytest.raises(RunLockedError, match="PID 1 "):
        RunLock(run).acquire()
