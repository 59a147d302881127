"""A run killed mid-schedule and resumed ends exactly like an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from graft.errors import ConfigError
from graft.train import fit
from graft.train.unfreeze import ResumeMismatchError

from .conftest import StopAfter

PROGRESSIVE = {
    "recipe": "progressive",
    "unfreeze": "1:+2,3:all",
    "epochs": 5,
    "deterministic": True,
    "seed": 3,
}


def _weights(run):
    return load_file(str(run / "bundle" / "model.safetensors"))


def test_resume_after_crash_matches_uninterrupted_run(tiny_folder, tiny_opts, tmp_path):
    opts = {**tiny_opts, **PROGRESSIVE, "augment": "light", "dropout": 0.2}
    full = fit(tiny_folder, out=str(tmp_path / "a"), **opts)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tiny_folder, out=str(tmp_path / "b"), callbacks=[StopAfter(2)], **opts)
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "b" / "bundle").exists()
    resumed = fit(tiny_folder, out=str(tmp_path / "b"), resume=True, **opts)

    a, b = _weights(full.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert resumed.metrics["val_acc"] == full.metrics["val_acc"]
    assert resumed.metrics["val_loss"] == full.metrics["val_loss"]
    assert [e["epoch"] for e in resumed.events] == [0, 1, 3]
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2, 3, 4]


def test_resume_refuses_a_changed_plan(tiny_folder, tiny_opts, tmp_path):
    opts = {**tiny_opts, **PROGRESSIVE}
    with pytest.raises(RuntimeError):
        fit(tiny_folder, out=str(tmp_path / "r"), callbacks=[StopAfter(1)], **opts)
    with pytest.raises(ResumeMismatchError, match="different recipe plan"):
        fit(tiny_folder, out=str(tmp_path / "r"), resume=True, **{**opts, "unfreeze": "2:+1,3:all"})


def test_existing_run_needs_resume_and_resume_needs_a_checkpoint(tiny_folder, tiny_opts, tmp_path):
    fit(tiny_folder, out=str(tmp_path / "r"), recipe="head", epochs=1, **tiny_opts)
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(tiny_folder, out=str(tmp_path / "r"), recipe="head", epochs=1, **tiny_opts)
    with pytest.raises(ConfigError, match="nothing to resume"):
        fit(tiny_folder, out=str(tmp_path / "empty"), resume=True, **tiny_opts)


def test_last_checkpoint_is_the_last_epoch_even_without_improvement(
    tiny_folder, tiny_opts, tmp_path
):
    # lr ~0 with frozen-BN head training: val_acc never changes, so only epoch 0 is a "best"
    opts = {**tiny_opts, "recipe": "head", "epochs": 3, "lr": 1e-12, "monitor": "val_acc"}
    run = fit(tiny_folder, out=str(tmp_path / "r"), **opts).run_dir
    epoch = {
        n: torch.load(run / "checkpoints" / f"{n}.ckpt", weights_only=True)["epoch"]
        for n in ("best", "last")
    }
    assert epoch == {"best": 0, "last": 2}  # Lightning's save_last alone left last.ckpt at epoch 0
