"""WiSE-FT, --average and --preset through graft.fit and `graft fit` on a tiny model."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from graft.cli import main
from graft.errors import ConfigError, GraftError
from graft.train import FitConfig, fit
from graft.train.presets import AVERAGE_IN_BEST, PRESETS, WISE_IN_BEST, with_preset
from graft.train.resolved import resolve_config


def _metrics(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_wise_chooses_alpha_on_validation_and_saves_those_weights(tiny_folder, tmp_path, tiny_opts):
    run = tmp_path / "wise"
    result = fit(tiny_folder, out=str(run), epochs=4, wise=True, seed=3, **tiny_opts)
    wise = _metrics(run)["weights"]["wise"]
    curve = dict((a, acc) for a, acc in wise["curve"])
    assert list(curve) == [round(0.1 * i, 1) for i in range(11)]
    assert wise["alpha"] in curve and curve[wise["alpha"]] == max(curve.values())
    assert curve[wise["alpha"]] >= curve[1.0]  # never below plain fine-tuning on validation
    assert wise["bn"] == "interpolated"
    # the final validation (Lightning's loop, on the saved weights) matches the chosen point
    assert result.metrics["val_acc"] == pytest.approx(curve[wise["alpha"]], abs=1e-6)
    assert result.metrics["wise_alpha"] == wise["alpha"]
    assert not (run / "checkpoints" / "weights").exists()  # kept weights removed at the end
    assert load_file(str(result.bundle / "model.safetensors"))
    assert "WiSE-FT: validation accuracy by alpha" in (run / "report.html").read_text()


def test_average_swa_keeps_auto_statistics_and_recomputes_trained_ones(
    tiny_folder, tmp_path, tiny_opts
):
    run = tmp_path / "swa"
    fit(tiny_folder, out=str(run), epochs=4, average="swa", report=False, **tiny_opts)
    avg = _metrics(run)["weights"]["average"]
    assert avg["method"] == "swa" and avg["epochs"] == [2, 3]  # auto: head 2, full 2 epochs
    assert avg["bn"].startswith("kept")  # auto never updates BatchNorm statistics
    run = tmp_path / "full"
    result = fit(tiny_folder, out=str(run), recipe="full", bn="train", epochs=3, average="top-k",
                 average_k=2, report=False, **tiny_opts)  # fmt: skip
    avg = _metrics(run)["weights"]["average"]
    assert avg["bn"] == "recomputed" and len(avg["epochs"]) == 2
    assert result.metrics["average_n"] == 2.0
    assert result.metrics["val_acc"] == pytest.approx(avg["val_acc"], abs=1e-6)


def test_greedy_soup_records_its_curve(tiny_folder, tmp_path, tiny_opts):
    run = tmp_path / "soup"
    fit(tiny_folder, out=str(run), epochs=5, average="greedy-soup", report=False, **tiny_opts)
    avg = _metrics(run)["weights"]["average"]
    assert len(avg["soup_curve"]) == 3 and 1 <= len(avg["epochs"]) <= 3
    assert avg["soup_curve"][0] == max(avg["soup_curve"][: len(avg["epochs"])])


def test_wise_and_ranking_averages_need_validation(tiny_folder, tmp_path, tiny_opts):
    opts = {**tiny_opts, "val_split": 0.0}
    with pytest.raises(ConfigError, match="validation"):
        fit(tiny_folder, out=str(tmp_path / "a"), epochs=3, wise=True, report=False, **opts)
    with pytest.raises(ConfigError, match="no head phase"):
        FitConfig(data="x", recipe="full", wise=True)
    with pytest.raises(ConfigError, match="average_k"):
        FitConfig(data="x", average_k=0)


def test_preset_fills_options_and_explicit_ones_win(tmp_path):
    cfg = resolve_config("d", None, {"preset": "best"})
    assert (cfg.average, cfg.tta, cfg.wise) == (AVERAGE_IN_BEST, True, WISE_IN_BEST)
    assert PRESETS["best"]["average"] == AVERAGE_IN_BEST
    cfg = resolve_config("d", None, {"preset": "best", "average": "swa", "tta": False})
    assert (cfg.average, cfg.tta) == ("swa", False)
    base = FitConfig(data="d", average="top-k")  # a --config file's own choice wins too
    assert resolve_config(None, base, {"preset": "best"}).average == "top-k"
    assert resolve_config("d", None, {"preset": "balanced"}).average == "none"
    assert with_preset({"preset": None, "average": "swa"}, set())["average"] == "swa"
    with pytest.raises(GraftError, match="preset"):
        resolve_config("d", None, {"preset": "fastest"})


def test_cli_preset_with_an_explicit_flag(tiny_folder, tmp_path, capsys):
    run = tmp_path / "cli"
    code = main(["fit", str(tiny_folder), "--model", "test_efficientnet", "--weights", "none",
                 "--image-size", "32", "--batch-size", "8", "--workers", "0", "--no-progress",
                 "--val-split", "0.25", "--epochs", "3", "--preset", "best", "--average", "swa",
                 "--no-report", "--out", str(run), "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    saved = FitConfig.load(run / "config.yaml")
    assert saved.average == "swa" and saved.tta  # the flag won, the preset filled the rest
    assert "val_acc_tta" in out["metrics"]
    for member in ("test_efficientnet", "test_efficientnet-long"):  # best's default members
        assert _metrics(run / "members" / member)["weights"]["average"]["method"] == "swa"


def test_preset_fast_is_a_probe_bundle(tiny_folder, tmp_path, tiny_opts):
    from graft.bundle import load_bundle

    run = tmp_path / "fast"
    result = fit(tiny_folder, out=str(run), preset="fast", **tiny_opts)
    assert result.bundle == run / "bundle"
    bundle = load_bundle(result.bundle)
    assert bundle.kind == "probe"
    assert 0.0 <= result.metrics["val_acc"] <= 1.0 and "fit_seconds" in result.metrics
    assert FitConfig.load(run / "config.yaml").preset == "fast"
    with pytest.raises(ConfigError, match="already holds"):
        fit(tiny_folder, out=str(run), preset="fast", **tiny_opts)


def test_tta_is_reported_only_with_flips(tiny_folder, tmp_path, tiny_opts):
    r = fit(tiny_folder, out=str(tmp_path / "t"), epochs=2, tta=True, report=False, **tiny_opts)
    assert 0.0 <= r.metrics["val_acc_tta"] <= 1.0
    r = fit(tiny_folder, out=str(tmp_path / "n"), epochs=2, tta=True, flip=False, report=False,
            **tiny_opts)  # fmt: skip
    assert "val_acc_tta" not in r.metrics
