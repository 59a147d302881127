"""graft stats over 2 gloo processes equals one process (sums all-reduced, facts gathered by rank)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graft import distributed
from graft.data import dataset_stats

from .workers import read, stats_on_rank


def _folder_with_extras(data: Path) -> Path:
    (data / "red" / "broken.png").write_bytes(b"not an image")
    (data / "green" / "copy.png").write_bytes((data / "red" / "red_001.png").read_bytes())
    return data


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_two_ranks_equal_one(tiny_folder, tmp_path):
    data = _folder_with_extras(tiny_folder)
    single = dataset_stats(data, model="test_efficientnet", progress=False, workers=1).to_dict()
    assert single["corrupt"] and single["duplicates"]  # the comparison covers the gathered facts
    distributed.spawn(stats_on_rank, 2, str(data), str(tmp_path))
    for r in range(2):
        assert read(tmp_path / f"stats{r}.json") == json.loads(json.dumps(single))


@pytest.mark.slow  # spawns 2 processes: 2 min on the loaded 2-core machine
def test_cli_devices_2_equals_one_process(tiny_folder, tmp_path):
    data = _folder_with_extras(tiny_folder)
    runs = []
    for devices in ("1", "2"):
        out = tmp_path / f"stats-{devices}"
        cmd = [sys.executable, "-m", "graft", "stats", str(data), "--model", "test_efficientnet",
               "--accelerator", "cpu", "--devices", devices, "--no-progress", "--out", str(out)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "recommended normalization" in proc.stdout
        runs.append(read(out / "stats.json"))
    assert runs[0] == runs[1]
