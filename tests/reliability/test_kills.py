"""Kills: ``graft fit`` and ``graft extract`` are SIGKILLed mid-run; every file left behind loads
(checkpoints, shards, manifest; a bundle only ever whole), ``--resume`` completes, and the result
equals an uninterrupted run (deterministic mode, same seed).

The killed runs are real subprocesses (``python -m graft``); the resumes and the reference runs
run in this process through ``graft.cli.main``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import PYTHON, TINY_FIT, assert_clean_exit, clean_folder, run_cli, subprocess_env

EXTRACT = [
    "--model",
    "efficientnet_lite0",
    "--image-size",
    "32",
    "--batch-size",
    "64",
    "--workers",
    "0",
]
# two loader workers (the later --workers wins): their random state must not matter on resume
FIT = [*TINY_FIT, "--recipe", "full", "--epochs", "4", "--deterministic", "--seed", "0",
       "--val-split", "0.25", "--augment", "light", "--workers", "2"]  # fmt: skip


def start(args: list[object], log: Path) -> subprocess.Popen:
    """``python -m graft ARGS`` in its own session, output to ``log``."""
    with open(log, "wb") as f:
        return subprocess.Popen(
            [PYTHON, "-m", "graft", "-v", *map(str, args)],
            env=subprocess_env(),
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_when(
    proc: subprocess.Popen, ready: Callable[[], bool], log: Path, timeout: float = 600
) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            return
        if proc.poll() is not None:
            pytest.fail(
                f"the run ended (exit {proc.returncode}) before the kill point:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail(f"kill point not reached in {timeout} s:\n{log.read_text()[-3000:]}")


# ------------------------------------------------------------------------------------- extract

# The fast variant calls graft.features.extract (what `graft extract` runs) with small shards and a
# seeded random-init test model; the slow one runs `python -m graft extract` with the shipped
# weights on 2200 images (shards hold 1024 rows there).
API_DRIVER = (
    "import sys, torch; torch.manual_seed(0); torch.set_num_threads(1)\n"
    "from graft.features import extract\n"
    "extract(sys.argv[1], model='test_efficientnet', weights='none', image_size=32, batch_size=8,\n"
    "        workers=0, out=sys.argv[2], shard_rows=16, progress=False)\n"
)


def api_extract(data: Path, out: Path) -> None:
    """In-process, with the driver's seed and ONE thread: rows must equal the killed run's bit for
    bit, and a convolution summed over another thread count rounds differently."""
    from graft.features import extract

    threads = torch.get_num_threads()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    try:
        extract(data, model="test_efficientnet", weights="none", image_size=32, batch_size=8,
                workers=0, out=out, shard_rows=16, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def start_api_extract(data: Path, out: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen(
            [PYTHON, "-c", API_DRIVER, str(data), str(out)], env=subprocess_env(),
            stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def many_images(root: Path, per_class: int) -> Path:
    """2 classes x ``per_class`` 8x8 PNGs."""
    rng = np.random.default_rng(0)
    for c, cls in enumerate(("dark", "light")):
        folder = root / cls
        folder.mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(c * 128, c * 128 + 128, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(arr).save(folder / f"{i:04d}.png")
    return root


def shards(out: Path) -> list[Path]:
    return sorted(out.glob("shard-*.safetensors"))


def listed_shards(out: Path) -> int:
    """Shards the manifest lists (what a resume can reuse); 0 while there is no manifest."""
    from graft.io import read_json

    try:
        return len({e["shard"] for e in read_json(out / "manifest.json")["entries"]})
    except (OSError, ValueError, KeyError):
        return 0


def check_store_consistent(out: Path) -> int:
    """Every shard file loads; the manifest (if any) parses and points only at rows that exist.
    Returns the number of images the manifest lists."""
    from safetensors.numpy import load_file

    from graft.io import read_json

    rows = {p.name: load_file(str(p))["features"].shape[0] for p in shards(out)}
    if not (out / "manifest.json").exists():
        return 0
    manifest = read_json(out / "manifest.json")
    for entry in manifest["entries"]:
        assert entry["row"] < rows[entry["shard"]], entry
    return len(manifest["entries"])


def store_features(out: Path) -> dict[str, np.ndarray]:
    from graft.features.store import FeatureStore

    store = FeatureStore.load(out)
    feats = store.read_rows([(e.shard, e.row) for e in store.entries])
    return {os.path.basename(os.path.dirname(e.file)) + "/" + os.path.basename(e.file): f
            for e, f in zip(store.entries, feats, strict=True)}  # fmt: skip


def assert_same_features(out: Path, reference: dict[str, np.ndarray]) -> None:
    resumed = store_features(out)
    assert resumed.keys() == reference.keys()
    for name, row in reference.items():
        np.testing.assert_array_equal(resumed[name], row, err_msg=name)
    from graft.io import read_json  # and no shard is left that the manifest does not use

    used = {e["shard"] for e in read_json(out / "manifest.json")["entries"]}
    assert {p.name for p in shards(out)} == used


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return many_images(tmp_path_factory.mktemp("small") / "data", per_class=120)


@pytest.fixture(scope="module")
def small_reference(small_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "feats"
    api_extract(small_folder, out)
    return store_features(out)


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("shard-file-written", marks=pytest.mark.slow),
        "manifest-lists-2",
        pytest.param("manifest-lists-6", marks=pytest.mark.slow),
    ],
)
def test_extract_killed_then_resumed_equals_uninterrupted(
    small_folder: Path, small_reference: dict, tmp_path: Path, point: str
) -> None:
    out, log = tmp_path / "feats", tmp_path / "extract.log"
    proc = start_api_extract(small_folder, out, log)
    if point == "shard-file-written":  # before the manifest that lists it: an orphan shard
        kill_when(proc, lambda: len(shards(out)) >= 1, log)
    else:
        n = int(point.rsplit("-", 1)[1])
        kill_when(proc, lambda: listed_shards(out) >= n, log)
    listed = check_store_consistent(out)
    kept = {p.name: p.stat().st_mtime_ns for p in shards(out)} if listed else {}
    assert point == "shard-file-written" or listed >= 16 * int(point.rsplit("-", 1)[1])

    api_extract(small_folder, out)  # the resume (same seeded weights, so stored rows are reused)
    check_store_consistent(out)
    for name, mtime in kept.items():  # listed shards were reused as they were, not rewritten
        assert (out / name).stat().st_mtime_ns == mtime, name
    assert_same_features(out, small_reference)


@pytest.mark.slow
def test_cli_extract_killed_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    data = many_images(tmp_path / "data", per_class=1100)  # 2200 images: 3 shards of <= 1024 rows
    ref = tmp_path / "ref"
    assert_clean_exit(run_cli("extract", data, *EXTRACT, "--out", ref), allowed=(0,))
    out, log = tmp_path / "feats", tmp_path / "extract.log"
    proc = start(["extract", data, *EXTRACT, "--out", out], log)
    kill_when(proc, lambda: listed_shards(out) >= 1, log)
    assert check_store_consistent(out) == 1024
    r = run_cli("-v", "extract", data, *EXTRACT, "--out", out)
    assert_clean_exit(r, allowed=(0,))
    assert "1024 stored, 1176 to extract" in r.err, r.err
    assert_same_features(out, store_features(ref))


# ----------------------------------------------------------------------------------------- fit


def check_run_consistent(run: Path) -> None:
    """Checkpoints load as plain tensors; a bundle, if present, is whole and passes its checksums."""
    for ckpt in sorted((run / "checkpoints").glob("*.ckpt")):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert "state_dict" in state and "epoch" in state, ckpt
    if (run / "bundle").exists():
        from graft.bundle import load_bundle

        load_bundle(run / "bundle")


def last_epoch(run: Path) -> int:
    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return -1
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - being replaced right now; try again
        return -1


@pytest.fixture(scope="module")
def fit_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("fitdata") / "data", per_class=8)


@pytest.fixture(scope="module")
def reference_fit(fit_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from safetensors.torch import load_file

    from graft.io import read_json

    run = tmp_path_factory.mktemp("fitref") / "run"
    r = run_cli("fit", fit_data, *FIT, "--out", run)
    assert_clean_exit(r, allowed=(0,))
    metrics = read_json(run / "metrics.json")["metrics"]
    return {**metrics, "weights": load_file(str(run / "bundle" / "model.safetensors"))}


@pytest.mark.parametrize(
    "kill_after_epoch",
    [pytest.param(0, marks=pytest.mark.slow), pytest.param(1, marks=pytest.mark.slow)],
    ids=["in-epoch-1", "in-epoch-2"],
)
def test_fit_killed_then_resumed_equals_uninterrupted(
    fit_data: Path, reference_fit: dict, tmp_path: Path, kill_after_epoch: int
) -> None:
    from graft.io import read_json

    run, log = tmp_path / "run", tmp_path / "fit.log"
    proc = start(["fit", fit_data, *FIT, "--out", run], log)
    kill_when(proc, lambda: last_epoch(run) >= kill_after_epoch, log)
    check_run_consistent(run)
    assert not (run / "bundle").exists()

    r = run_cli("fit", "--resume", "--out", run)
    assert_clean_exit(r, allowed=(0,))
    check_run_consistent(run)
    metrics = read_json(run / "metrics.json")["metrics"]
    for key in ("val_loss", "val_acc", "epochs"):
        assert metrics[key] == reference_fit[key], (key, metrics, reference_fit)
    from safetensors.torch import load_file

    weights = load_file(str(run / "bundle" / "model.safetensors"))
    assert weights.keys() == reference_fit["weights"].keys()
    for key, value in reference_fit["weights"].items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0, msg=key)
