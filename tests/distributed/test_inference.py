"""graft predict / evaluate with ``--accelerator cpu --devices 2``: two processes (Lightning Fabric),
each a shard of the images, give the output of one process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from graft.bundle import save_bundle
from graft.cli import main
from graft.inference import evaluate, predict
from graft.models import create_model

DATA_CONFIG = {"input_size": (3, 32, 32), "interpolation": "bilinear", "crop_pct": 1.0,
               "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}  # fmt: skip


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("test_efficientnet", num_classes=3, pretrained=False).eval()
    with torch.no_grad():  # a spread-out head: predictions differ clearly between images
        torch.nn.init.normal_(model.get_classifier().weight, std=0.5)
    return save_bundle(tmp_path / "bundle", model, ["blue", "green", "red"], DATA_CONFIG)


@pytest.mark.slow  # spawns 2 processes: about a minute on the loaded 2-core machine
def test_predict_in_two_processes_equals_one(bundle: Path, tiny_folder: Path, monkeypatch) -> None:
    from graft import distributed

    worlds = []
    spawn = distributed.spawn
    monkeypatch.setattr(distributed, "spawn", lambda fn, world, *a: worlds.append(world) or spawn(
        fn, world, *a))  # fmt: skip
    broken = tiny_folder / "red" / "broken.png"  # in the second shard: its reason must come back
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    one = predict(bundle, tiny_folder, top_k=3, batch_size=5, accelerator="cpu", devices=1)
    two = predict(bundle, tiny_folder, top_k=3, batch_size=5, accelerator="cpu", devices=2)
    assert [r["path"] for r in two] == [r["path"] for r in one] and len(one) == 24
    assert [r["label"] for r in two] == [r["label"] for r in one]
    assert len({r["label"] for r in one}) > 1  # a model that tells images apart
    probs = [[t["prob"] for t in r["top_k"]] for r in one]
    assert np.allclose([[t["prob"] for t in r["top_k"]] for r in two], probs, atol=1e-6)
    assert two.skipped == one.skipped == [(str(broken), "not an image")]
    assert worlds == [2]  # the second run, and only it, started two processes


@pytest.mark.slow  # spawns 2 processes
def test_evaluate_cli_in_two_processes_equals_one(bundle: Path, tiny_folder: Path, tmp_path,
                                                  capsys) -> None:  # fmt: skip
    docs = []
    for devices in ("1", "2"):
        out = tmp_path / f"eval-{devices}"
        argv = ["evaluate", str(bundle), str(tiny_folder), "--accelerator", "cpu", "--devices",
                devices, "--batch-size", "4", "--out", str(out), "--json"]  # fmt: skip
        assert main(argv) == 0
        docs.append(json.loads(capsys.readouterr().out))
        assert (out / "config.yaml").is_file() and (out / "predictions.csv").is_file()
    one, two = (d["metrics"] for d in docs)
    assert two["n"] == one["n"] == 24
    assert two["confusion_matrix"] == one["confusion_matrix"]
    assert two["accuracy"] == pytest.approx(one["accuracy"])
    assert (tmp_path / "eval-2" / "predictions.csv").read_text().splitlines()[0] == (
        tmp_path / "eval-1" / "predictions.csv"
    ).read_text().splitlines()[0]


@pytest.mark.slow  # spawns 2 processes
def test_api_evaluate_devices_2_gives_the_same_probabilities(bundle: Path, tiny_folder) -> None:
    one = evaluate(bundle, tiny_folder, accelerator="cpu", devices=1)
    two = evaluate(bundle, tiny_folder, accelerator="cpu", devices="2")
    assert two.paths == one.paths and np.array_equal(two.y_true, one.y_true)
    assert np.allclose(two.probs, one.probs, atol=1e-6)
