"""A DDP run (2 gloo processes) killed mid-schedule and resumed ends like an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_fit.py")
DDP = "ddp_find_unused_parameters_true"
OPTIONS = {
    "model": "test_efficientnet", "weights": "none", "image_size": 32, "batch_size": 4,
    "workers": 0, "progress": False, "val_split": 0.25, "recipe": "progressive",
    "unfreeze": "1:+2,2:all", "epochs": 4, "lr": 0.05, "accelerator": "cpu", "seed": 3,
    "deterministic": True, "devices": 2, "strategy": DDP,
}  # fmt: skip


def _launch(trace: Path, data: Path, out: Path, **extra) -> subprocess.CompletedProcess:
    pairs = [f"{k}={v}" for k, v in {**OPTIONS, **extra}.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, str(SCRIPT), str(trace), str(data), str(out), *pairs],
                          capture_output=True, text=True, timeout=900, env=env)  # fmt: skip


def _records(trace: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(trace.glob("rank*.json"))]


@pytest.mark.slow
def test_ddp_resume_after_crash_matches_uninterrupted_run(tiny_folder_session, tmp_path):
    data = tiny_folder_session
    full = _launch(tmp_path / "t-full", data, tmp_path / "full")
    assert full.returncode == 0, full.stderr[-4000:]

    crashed = _launch(tmp_path / "t-crash", data, tmp_path / "run", crash_after=1)
    assert crashed.returncode != 0
    assert "simulated crash after epoch 1" in crashed.stderr
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "run" / "bundle").exists()

    resumed = _launch(tmp_path / "t-resume", data, tmp_path / "run", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-4000:]

    (a0, a1), (b0, b1) = _records(tmp_path / "t-full"), _records(tmp_path / "t-resume")
    # both ranks in step after the resume, and bit-identical to the uninterrupted DDP run
    assert b0["state_sha"] == b1["state_sha"] == a0["state_sha"] == a1["state_sha"]
    assert b0["metrics"]["val_acc"] == a0["metrics"]["val_acc"]
    assert b0["metrics"]["val_loss"] == a0["metrics"]["val_loss"]
    # the resumed processes started from the last checkpoint written before the crash (an epoch
    # boundary, not step 0) and trained only the remaining epochs, with the parameters the plan
    # unfroze by then
    per_epoch = a0["steps"][1] // OPTIONS["epochs"]
    start = b0["steps"][0]
    assert a0["steps"][0] == 0 and per_epoch > 0
    assert b0["steps"] == b1["steps"] == [start, a0["steps"][1]]
    assert 0 < start <= 2 * per_epoch and start % per_epoch == 0
    remaining = OPTIONS["epochs"] - start // per_epoch
    assert b0["epochs"] == a0["epochs"][-remaining:] == b1["epochs"]
    assert [e["epoch"] for e in b0["events"]] == [e["epoch"] for e in a0["events"]]
    # one complete run folder with the whole history
    history = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert len(history) == 1 + OPTIONS["epochs"], history
    assert (tmp_path / "run" / "bundle" / "model.json").is_file()
