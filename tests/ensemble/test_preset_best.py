"""``graft fit --preset best``: --model and --ensemble-models fit the same way, combined in OUT/bundle."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import graft.ensembling.best  # noqa: F401 - installs preset best's runner, as graft.fit does
from graft.bundle import load_bundle
from graft.cli import main
from graft.data import load_image
from graft.ensembling import combine
from graft.ensembling.members import choose_members
from graft.errors import ConfigError
from graft.inference import predict
from graft.inference.runner import eval_transform, run_inference
from graft.train import FitConfig, fit

torch.set_num_threads(1)  # the cores are shared; tiny models run no faster on two

EXTRA = ["test_efficientnet_gn", "test_resnet"]
TINY = {"model": "test_efficientnet", "weights": "none", "image_size": 32, "batch_size": 8,
        "workers": 0, "progress": False, "val_split": 0.25, "epochs": 1, "report": False}  # fmt: skip
FLAGS = ["--model", "test_efficientnet", "--weights", "none", "--image-size", "32",
         "--batch-size", "8", "--workers", "0", "--no-progress", "--val-split", "0.25",
         "--epochs", "1", "--no-report"]  # fmt: skip


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def best_run(tmp_path_factory: pytest.TempPathFactory, tiny_folder_session: Path) -> tuple:
    """One `graft fit --preset best --json` run of three tiny members with equal weights."""
    run = tmp_path_factory.mktemp("best") / "run"
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout):
        mp.setattr(combine, "ENSEMBLE_WEIGHTS", "equal")
        code = main(["fit", str(tiny_folder_session), *FLAGS, "--preset", "best",
                     "--ensemble-models", ",".join(EXTRA), "--out", str(run), "--json"])  # fmt: skip
    assert code == 0
    return run, json.loads(stdout.getvalue())  # exactly one JSON document


def test_best_writes_an_ensemble_bundle_of_the_members(best_run, tiny_folder_session):
    run, out = best_run
    assert out["bundle"] == str(run / "bundle") and out["metrics"] == _metrics(run)["metrics"]
    bundle = load_bundle(run / "bundle")
    assert bundle.kind == "ensemble"
    assert bundle.model.weights.tolist() == pytest.approx([1 / 3] * 3)
    names = ["test_efficientnet", *EXTRA]
    images = sorted(str(p) for p in tiny_folder_session.rglob("*.png"))[:6]
    members = [load_bundle(run / "members" / n / "bundle") for n in names]
    x = torch.stack([eval_transform(bundle)(load_image(p)) for p in images])  # [0, 1], 32 px
    with torch.no_grad():  # each member loaded on its own, fed the same pixels normalised its way
        mean = sum(m.model(_normalised(x, m.data_config)).softmax(dim=1) for m in members) / 3
    np.testing.assert_allclose(run_inference(bundle, images).probs, mean.numpy(), atol=1e-5)
    assert [p["label"] for p in predict(run / "bundle", images)] == [
        bundle.classes[i] for i in mean.argmax(dim=1)
    ]


def _normalised(x: torch.Tensor, cfg: dict) -> torch.Tensor:
    mean, std = (torch.tensor(cfg[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    return (x - mean) / std


def test_best_metrics_name_members_weights_and_seconds(best_run):
    run, _ = best_run
    record = _metrics(run)
    assert record["preset"] == "best"
    assert record["ensemble"]["members"] == ["test_efficientnet", *EXTRA]
    assert record["ensemble"]["weights"] == pytest.approx([1 / 3] * 3)
    assert record["ensemble"]["weighting"] == "equal"
    assert set(record["members"]) == {"test_efficientnet", *EXTRA}
    for member in record["members"].values():
        assert 0.0 <= member["metrics"]["val_acc"] <= 1.0 and member["seconds"] > 0
        assert "val_acc_tta" in member["metrics"]  # the preset's TTA, flips on
    metrics = record["metrics"]
    assert 0.0 <= metrics["val_acc"] <= 1.0 and 0.0 <= metrics["val_acc_tta"] <= 1.0
    assert metrics["fit_seconds"] >= sum(m["seconds"] for m in record["members"].values())
    saved = FitConfig.load(run / "config.yaml")
    assert saved.ensemble_models == EXTRA and saved.preset == "best"
    main_cfg = FitConfig.load(run / "members" / "test_efficientnet" / "config.yaml")
    for name in EXTRA:  # fit the same way: the main run's resolved size and epochs
        cfg = FitConfig.load(run / "members" / name / "config.yaml")
        assert (cfg.model, cfg.ensemble_models) == (name, [])
        assert (cfg.image_size, cfg.epochs, cfg.head_epochs, cfg.seed, cfg.tta) == (
            main_cfg.image_size, main_cfg.epochs, main_cfg.head_epochs, main_cfg.seed, True
        )  # fmt: skip


def test_a_killed_run_continues_reusing_finished_members(best_run, tiny_folder_session, tmp_path,
                                                         caplog, monkeypatch):  # fmt: skip
    monkeypatch.setattr(combine, "ENSEMBLE_WEIGHTS", "val")  # the other weighting (default: equal)
    run = tmp_path / "again"
    shutil.copytree(best_run[0], run)
    for leftover in ("bundle", "metrics.json", f"members/{EXTRA[1]}"):  # killed while fitting it
        shutil.rmtree(run / leftover) if (run / leftover).is_dir() else (run / leftover).unlink()
    kept = {n: (run / "members" / n / "bundle" / "model.safetensors").stat().st_mtime_ns
            for n in ("test_efficientnet", EXTRA[0])}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="graft"):
        result = fit(tiny_folder_session, preset="best", ensemble_models=EXTRA, out=str(run),
                     **TINY)  # fmt: skip
    assert sum("reused, not refit" in r.getMessage() for r in caplog.records) == 2
    for name, mtime in kept.items():
        assert (run / "members" / name / "bundle" / "model.safetensors").stat().st_mtime_ns == mtime
    record = _metrics(run)
    assert record["members"]["test_efficientnet"]["reused"]
    assert not record["members"][EXTRA[1]]["reused"]
    # weights chosen on validation, as the bundle holds them
    bundle = load_bundle(result.bundle)
    assert record["ensemble"]["weighting"] == "val"
    assert bundle.model.weights.tolist() == pytest.approx(record["ensemble"]["weights"])
    assert sum(record["ensemble"]["weights"]) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="already holds a finished run"):
        fit(tiny_folder_session, preset="best", ensemble_models=EXTRA, out=str(run), **TINY)


def test_an_empty_member_list_fits_model_alone(tiny_folder_session, tmp_path):
    run = tmp_path / "alone"
    result = fit(tiny_folder_session, preset="best", ensemble_models=[], out=str(run), **TINY)
    assert result.bundle == run / "bundle" and load_bundle(result.bundle).kind == "classifier"
    assert not (run / "members").exists() and "val_acc_tta" in result.metrics


def test_unknown_member_names_get_a_suggestion(tiny_folder_session, tmp_path):
    with pytest.raises(ConfigError, match="test_resnt.*Did you mean.*test_resnet"):
        fit(tiny_folder_session, preset="best", ensemble_models=["test_resnt"],
            out=str(tmp_path / "x"), **TINY)  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_dry_run_plans_every_member_and_trains_nothing(tiny_folder_session, tmp_path):
    run = tmp_path / "dry"
    result = fit(tiny_folder_session, preset="best", ensemble_models=EXTRA[:1], out=str(run),
                 dry_run=True, **TINY)  # fmt: skip
    assert "member 1/2: test_efficientnet" in result.plan_text
    assert "member 2/2: test_efficientnet_gn" in result.plan_text
    assert result.metrics["estimated_seconds"] > 0 and not run.exists()
    twin = fit(tiny_folder_session, preset="best", out=str(run), dry_run=True,
               **{**TINY, "epochs": 2})  # fmt: skip
    assert "member 2/2: test_efficientnet-long" in twin.plan_text
    assert twin.plan_text.count("\nmember ") == 2 and not run.exists()


def test_default_members_are_model_and_its_long_twin(tiny_folder_session, tmp_path, monkeypatch):
    monkeypatch.setattr(combine, "ENSEMBLE_WEIGHTS", "equal")
    run = tmp_path / "twin"
    result = fit(tiny_folder_session, preset="best", out=str(run), **{**TINY, "epochs": 2})
    record = _metrics(run)
    long_name = "test_efficientnet-long"
    assert record["ensemble"]["members"] == ["test_efficientnet", long_name]
    assert record["ensemble"]["weights"] == pytest.approx([0.5, 0.5])
    first = FitConfig.load(run / "members" / "test_efficientnet" / "config.yaml")
    twin = FitConfig.load(run / "members" / long_name / "config.yaml")
    assert (first.epochs, first.head_epochs) == (2, 1)  # epochs 2: 1 head + 1 full
    assert (twin.model, twin.epochs, twin.head_epochs) == ("test_efficientnet", 1 + 3 * 1, 1)
    assert (twin.image_size, twin.seed, twin.ensemble_models) == (first.image_size, first.seed, [])
    rows = (run / "members" / long_name / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["head", "full", "full", "full"]
    assert load_bundle(result.bundle).kind == "ensemble"
    assert FitConfig.load(run / "config.yaml").ensemble_models == ["long"]


def test_a_head_only_first_fit_has_no_long_twin(tiny_folder_session, tmp_path, caplog):
    run = tmp_path / "head-only"
    with caplog.at_level(logging.INFO, logger="graft"):
        result = fit(tiny_folder_session, preset="best", out=str(run), **TINY)  # epochs 1: head
    assert "no 'long' member" in caplog.text
    plan = fit(tiny_folder_session, preset="best", out=str(tmp_path / "dry"), dry_run=True, **TINY)
    assert "test_efficientnet alone" in plan.plan_text and "member 1/1: test_efficientnet" in (
        plan.plan_text
    )  # fmt: skip
    assert "-long" not in plan.plan_text
    assert result.bundle == run / "bundle" and load_bundle(result.bundle).kind == "classifier"
    assert sorted(p.name for p in (run / "members").iterdir()) == ["test_efficientnet"]
    assert not list(run.glob(".bundle*"))  # the copy's temporary folder is gone
    assert _metrics(run)["members"]["test_efficientnet"]["metrics"]["val_acc"] == pytest.approx(
        result.metrics["val_acc"]
    )  # fmt: skip


def test_choose_members_default_names_and_repeats(monkeypatch, caplog):
    from graft.ensembling import members

    monkeypatch.setattr(members, "offline_backbones", lambda: {members.backbone_key("test_vit")})
    lite0 = FitConfig(data="d", model="efficientnet_lite0")
    assert choose_members(lite0) == ["long"]
    assert choose_members(lite0.replace(ensemble_models=["auto"])) == ["long"]
    assert choose_members(lite0.replace(weights="none")) == ["long"]
    # --model itself and repeats count once; "long" can sit among backbones
    named = lite0.replace(ensemble_models=["tf_efficientnet_lite0,test_vit", "long,test_vit,long"])
    assert choose_members(named) == ["test_vit", "long"]
    with caplog.at_level(logging.WARNING, logger="graft"):
        assert choose_members(lite0.replace(ensemble_models=["tv:mobilenet_v2"])) == [
            "tv:mobilenet_v2"
        ]  # fmt: skip
    assert "tv:mobilenet_v2 has no pretrained weights on this machine" in caplog.text
    assert members.long_epochs(epochs=11, head_epochs=8) == 8 + 3 * 3


def test_fit_without_the_runner_says_what_to_import(tiny_folder_session, tmp_path):
    from graft.train import presets

    previous = presets.set_best_runner(None)
    try:
        with pytest.raises(ConfigError, match="import graft.ensembling.best"):
            fit(tiny_folder_session, preset="best", ensemble_models=EXTRA, out=str(tmp_path / "x"),
                **TINY)  # fmt: skip
    finally:
        presets.set_best_runner(previous)
    assert not (tmp_path / "x").exists()
