"""graft.extract over 2 gloo processes: the same features, files and feature store as one process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graft import distributed
from graft.features import Features, extract

from .workers import extract_on_rank, read


def _entries(store) -> list[tuple]:
    manifest = json.loads((store / "manifest.json").read_text())
    return [(e["file"], e["label"], e["split"], e["sha256"], e["row"]) for e in manifest["entries"]]


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_two_ranks_extract_like_one(tiny_folder, tmp_path):
    (tiny_folder / "red" / "broken.png").write_bytes(b"not an image")
    torch.manual_seed(0)  # the workers seed the same way: identical random-init weights
    single = extract(tiny_folder, model="test_efficientnet", weights="none", image_size=32,
                     batch_size=4, workers=0, out=tmp_path / "one", progress=False)  # fmt: skip
    distributed.spawn(extract_on_rank, 2, str(tiny_folder), str(tmp_path / "two"), str(tmp_path))
    seen = [read(tmp_path / f"meta{r}.json")["seen"] for r in range(2)]
    assert sum(seen) == len(single) and abs(seen[0] - seen[1]) <= 1, seen  # each rank a half
    for r in range(2):
        meta = read(tmp_path / f"meta{r}.json")
        assert meta["files"] == single.files and meta["splits"] == single.splits
        assert meta["labels"] == single.labels.tolist()
        np.testing.assert_allclose(np.load(tmp_path / f"features{r}.npy"), single.features,
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    assert _entries(tmp_path / "two") == _entries(tmp_path / "one")
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert [p for p, _ in manifest["skipped"]] == [str(tiny_folder / "red" / "broken.png")]


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_cli_accelerator_cpu_devices_2_equals_one_process(tiny_folder, tmp_path):
    """`graft extract --accelerator cpu --devices 2` writes the store one process writes."""
    import subprocess
    import sys

    stores = []
    for devices in ("1", "2"):
        out = tmp_path / f"store-{devices}"
        cmd = [sys.executable, "-m", "graft", "extract", str(tiny_folder), "--model",
               "efficientnet_lite0", "--image-size", "32", "--batch-size", "4", "--workers", "0",
               "--accelerator", "cpu", "--devices", devices, "--no-progress", "--out", str(out),
               "--json"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        printed = json.loads(proc.stdout)
        assert printed.pop("out") == str(out)
        stores.append((out, printed))
    assert stores[0][1] == stores[1][1]  # the printed result: images, splits, shape, classes
    stores = [out for out, _ in stores]
    assert _entries(stores[0]) == _entries(stores[1])
    one, two = Features.load(stores[0]), Features.load(stores[1])
    assert one.files == two.files and one.labels.tolist() == two.labels.tolist()
    np.testing.assert_allclose(two.features, one.features, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_python_api_devices_2_without_out_equals_one_process(tiny_folder):
    """graft.extract(accelerator="cpu", devices=2) runs two processes itself (a temporary store)."""
    kw = dict(model="efficientnet_lite0", image_size=32, batch_size=4, workers=0, progress=False)
    one = extract(tiny_folder, accelerator="cpu", devices=1, **kw)
    two = extract(tiny_folder, accelerator="cpu", devices=2, **kw)
    assert two.path is None and two.files == one.files and two.splits == one.splits
    np.testing.assert_allclose(two.features, one.features, rtol=1e-5, atol=1e-6)
