"""graft.extract over 2 gloo processes: the same features, files and feature store as one process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graft import distributed
from graft.features import extract

from .workers import extract_on_rank, read


def _entries(store) -> list[tuple]:
    manifest = json.loads((store / "manifest.json").read_text())
    return [(e["file"], e["label"], e["split"], e["sha256"], e["row"]) for e in manifest["entries"]]


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_two_ranks_extract_like_one(tiny_folder, tmp_path):
    (tiny_folder / "red" / "broken.png").write_bytes(b"not an image")
    torch.manual_seed(0)  # the workers seed the same way: identical random-init weights
    single = extract(tiny_folder, model="test_efficientnet", pretrained=False, image_size=32,
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
