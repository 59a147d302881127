"""config.yaml holds what auto chose, and ``--config RUN/config.yaml`` reproduces the run."""

from __future__ import annotations

import math

import yaml

from graft.cli import main
from graft.train import FitConfig, fit

CHOSEN = ("epochs", "head_epochs", "lr", "full_lr", "workers", "image_size", "cache_frozen")


def test_config_yaml_holds_the_resolved_values(tiny_folder, tiny_opts, tmp_path):
    opts = {k: v for k, v in tiny_opts.items() if k != "workers"}
    result = fit(
        tiny_folder, recipe="auto", epochs=3, out=str(tmp_path / "r"), report=False, **opts
    )
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert all(saved[k] is not None for k in CHOSEN), {k: saved[k] for k in CHOSEN}
    assert (saved["epochs"], saved["head_epochs"]) == (3, 1)
    assert (saved["lr"], saved["full_lr"]) == (0.003, 0.001)
    assert saved["cache_frozen"] is True and saved["image_size"] == 32
    assert result.config.epochs == 3 and result.config.workers == saved["workers"]


def test_the_saved_config_reproduces_the_run(tiny_folder, tiny_opts, tmp_path):
    first = fit(tiny_folder, recipe="auto", epochs=3, out=str(tmp_path / "a"), report=False,
                seed=3, **tiny_opts)  # fmt: skip
    again = fit(config=FitConfig.load(tmp_path / "a" / "config.yaml"), out=str(tmp_path / "b"))
    assert [h["phase"] for h in again.history] == [h["phase"] for h in first.history]
    for a, b in zip(first.history, again.history, strict=True):
        assert math.isclose(a["train_loss_epoch"], b["train_loss_epoch"], rel_tol=1e-6)
    for key in ("val_loss", "val_acc"):
        assert math.isclose(first.metrics[key], again.metrics[key], rel_tol=1e-6)
    assert again.config.seed == 3


def test_cli_reproduces_from_the_run_config(tiny_folder, tiny_opts, tmp_path, capsys):
    fit(tiny_folder, recipe="head", epochs=2, out=str(tmp_path / "a"), report=False, **tiny_opts)
    code = main(
        ["fit", "--config", str(tmp_path / "a" / "config.yaml"), "--out", str(tmp_path / "b")]
    )
    assert code == 0
    a = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    b = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert {**a, "out": None} == {**b, "out": None}
    assert "metrics:" in capsys.readouterr().out


def test_dry_run_prints_the_plan_and_trains_nothing(tiny_folder, tiny_opts, tmp_path):
    result = fit(tiny_folder, recipe="auto", epochs=4, out=str(tmp_path / "r"), dry_run=True,
                 **tiny_opts)  # fmt: skip
    assert not (tmp_path / "r" / "config.yaml").exists()
    assert not (tmp_path / "r" / "checkpoints").exists()
    text = result.plan_text
    assert "epochs 1-2  head" in text and "epochs 3-4  full" in text
    assert "estimated wall time" in text and "batch 8" in text and "32x32 px" in text
    assert result.metrics["estimated_seconds"] > 0
    assert result.config.head_epochs == 2 and result.config.full_lr == 0.001


def test_cli_dry_run(tiny_folder, tmp_path, capsys):
    code = main(["fit", str(tiny_folder), "--model", "test_efficientnet", "--weights", "none",
                 "--image-size", "32", "--epochs", "2", "--workers", "0", "--dry-run",
                 "--out", str(tmp_path / "r")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("plan: recipe auto, 2 epochs in total")
    assert "epoch 1  head" in out and "epoch 2  full" in out and "estimated wall time" in out
