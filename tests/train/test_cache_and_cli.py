"""Cached frozen-backbone outputs give the same head as the uncached path; the CLI runs fit."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from graft.cli import main
from graft.errors import ConfigError
from graft.train import FitConfig, fit


def test_cached_head_training_equals_uncached(tiny_folder, tiny_opts, tmp_path):
    opts = {**tiny_opts, "recipe": "head", "epochs": 3, "lr": 0.05, "augment": "none", "seed": 1}
    cached = fit(tiny_folder, out=str(tmp_path / "c"), cache_frozen=True, **opts)
    plain = fit(tiny_folder, out=str(tmp_path / "p"), cache_frozen=False, **opts)
    a = load_file(str(cached.bundle / "model.safetensors"))
    b = load_file(str(plain.bundle / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert cached.metrics["val_loss"] == pytest.approx(plain.metrics["val_loss"], rel=1e-4)


def test_cli_fit_with_yaml_config_and_flags(tiny_folder, tmp_path, capsys):
    config = tmp_path / "fit.yaml"
    config.write_text(
        "model: test_efficientnet\nweights: none\nimage_size: 32\nbatch_size: 8\nworkers: 0\nrecipe: head\n"
    )
    out = tmp_path / "run"
    code = main(
        [
            "fit",
            str(tiny_folder),
            "--config",
            str(config),
            "--epochs",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "bundle:" in capsys.readouterr().out
    saved = FitConfig.load(out / "config.yaml")
    assert saved.epochs == 1 and saved.recipe == "head" and saved.model == "test_efficientnet"
    meta = json.loads((out / "bundle" / "model.json").read_text())
    assert meta["recipe"]["name"] == "head" and meta["classes"] == ["blue", "green", "red"]


def test_config_rejects_unknown_keys_and_bad_values(tmp_path, capsys):
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        FitConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="needs an unfreezing schedule"):
        FitConfig(recipe="progressive")
    with pytest.raises(ConfigError, match="lr-find"):
        FitConfig(lr=-1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: fast\n")
    assert main(["fit", "x", "--config", str(bad)]) == 2
    assert "not one of" in capsys.readouterr().err


def test_cached_frozen_prefix_equals_uncached_for_freeze_upto(tiny_folder, tiny_opts, tmp_path):
    opts = {
        **tiny_opts,
        "recipe": "freeze-upto",
        "freeze_upto": 3,
        "epochs": 2,
        "lr": 0.01,
        "augment": "none",
        "seed": 2,
    }
    cached = fit(tiny_folder, out=str(tmp_path / "c"), cache_frozen=True, **opts)
    plain = fit(tiny_folder, out=str(tmp_path / "p"), cache_frozen=False, **opts)
    a = load_file(str(cached.bundle / "model.safetensors"))
    b = load_file(str(plain.bundle / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
