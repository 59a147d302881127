"""Outputs follow the umask like any file the user creates: bundles, run folders (checkpoints,
logs, report), feature stores. A teammate can read a bundle when the umask lets them.

Each case runs ``python -m graft`` in a subprocess started under its umask (libraries such as
fsspec read the umask once per process)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import PYTHON, TINY_EXTRACT, TINY_FIT, clean_folder, subprocess_env


def _graft(mask: int, *args: object) -> None:
    r = subprocess.run(
        [PYTHON, "-m", "graft", *map(str, args)], env=subprocess_env(), text=True,
        capture_output=True, preexec_fn=lambda: os.umask(mask), timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]


def _wrong_modes(root: Path, mask: int) -> list[str]:
    """Paths under ``root`` (itself included) whose mode is not 0666/0777 less ``mask``."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        got = path.stat().st_mode & 0o777
        if got != want:
            wrong.append(f"{path.relative_to(root.parent)}: {oct(got)} (want {oct(want)})")
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize("mask", [0o022, 0o027], ids=["022", "027"])
def test_every_output_follows_the_umask(mask, tmp_path):
    data = clean_folder(tmp_path / "data", per_class=6)
    run, feats = tmp_path / "run", tmp_path / "feats"
    _graft(mask, "fit", data, *TINY_FIT, "--recipe", "head", "--epochs", "1", "--out", run)
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "report.html").is_file()
    assert (run / "bundle" / "model.safetensors").is_file()
    _graft(mask, "extract", data, *TINY_EXTRACT, "--out", feats)
    assert list(feats.glob("shard-*.safetensors"))
    assert _wrong_modes(run, mask) + _wrong_modes(feats, mask) == []


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["022", "077"])
def test_bundle_and_store_follow_the_umask_in_process(mask, tmp_path):
    import numpy as np
    import timm

    from graft.bundle import save_bundle
    from graft.features.store import Entry, FeatureStore

    saved = os.umask(mask)
    try:
        model = timm.create_model("test_efficientnet", num_classes=2)
        cfg = {"input_size": (3, 32, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3}
        bundle = save_bundle(tmp_path / "b", model, ["a", "b"], cfg,
                             spec={"name": "test_efficientnet", "num_classes": 2})  # fmt: skip
        store = FeatureStore(tmp_path / "s", {"model": "m"}, ["a", "b"])
        store.root.mkdir()
        store.write_shard(np.zeros((2, 4), np.float32),
                          [Entry(f"{i}.png", 0, "train", "x", 1, 1, "", i) for i in range(2)])  # fmt: skip
    finally:
        os.umask(saved)
    assert _wrong_modes(bundle, mask) + _wrong_modes(store.root, mask) == []
