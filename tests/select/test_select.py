"""End-to-end selection on tiny models and generated images: table, JSON, PNG, fit command, budget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.cli import main
from graft.commands.select import parse_latency
from graft.errors import ConfigError, UnknownNameError
from graft.select import SelectionResult, select_models
from graft.select.api import consensus, fit_command, rank_rows

CANDIDATES = ["test_efficientnet", "test_resnet"]


@pytest.fixture(scope="module")
def selection(
    tiny_folder_session: Path, tmp_path_factory: pytest.TempPathFactory
) -> SelectionResult:
    out = tmp_path_factory.mktemp("select")
    return select_models(
        tiny_folder_session,
        CANDIDATES,
        weights="none",
        image_size=32,
        sample_per_class=6,
        scores=("logme", "probe", "knn", "hscore"),
        control=True,
        latency_budget_ms=10_000,
        repeats=3,
        batch_size=4,
        memory=False,  # the fresh-process memory probe is tested in test_cost.py
        out=out,
    )


def test_table_rows_have_every_measurement(selection: SelectionResult) -> None:
    assert sorted(selection.ranking) == sorted([*CANDIDATES, "test_efficientnet@random"])
    for row in selection.rows:
        assert row["params_m"] > 0 and row["gmacs"] > 0
        assert row["latency_ms"] > 0 and row["throughput"] > 0
        assert row["peak_mem_mb"] is None and row["memory_method"] == "off"
        assert row["sampled_images"] == 18 and row["input_size"] == [3, 32, 32]
        assert 0.0 <= row["probe"] <= 1.0 and 0.0 <= row["knn"] <= 1.0
        assert isinstance(row["logme"], float) and row["hscore"] > 0
        assert row["within_budget"] is True
    assert [r["rank"] for r in selection.rows] == [1, 2, 3]
    scores = [r["score"] for r in selection.rows]
    assert scores == sorted(scores, reverse=True)
    assert any(r["pareto"] for r in selection.rows)
    assert selection.rows[
        [r["candidate"] for r in selection.rows].index("test_efficientnet@random")
    ]["control"]


def test_outputs_json_png_and_fit_command(
    selection: SelectionResult, tiny_folder_session: Path
) -> None:
    data = json.loads(Path(selection.files["json"]).read_text())
    assert data["top"] == selection.top and data["top"] in CANDIDATES  # never the control
    assert [r["candidate"] for r in data["rows"]] == selection.ranking
    assert data["profile"]["n_classes"] == 3 and data["settings"]["rank_by"] == "consensus"
    png = Image.open(selection.files["plot"])
    assert png.format == "PNG" and png.size[0] > 300
    text = Path(selection.files["table"]).read_text()
    assert "LogME" in text and "top pick" in text and selection.top in text
    assert selection.fit_command == (
        f"graft fit {tiny_folder_session} --model {selection.top} --image-size 32 --weights none --out runs/fit-{selection.top}"
    )
    assert any(r.startswith("few_samples:") for r in selection.rules)  # 12 images per class


def test_candidates_without_weights_are_skipped_with_the_reason(tiny_folder_session: Path) -> None:
    r = select_models(
        tiny_folder_session, "test_resnet", sample_per_class=3, repeats=1, memory=False
    )
    assert r.rows == [] and r.top is None
    assert r.skipped[0]["candidate"] == "test_resnet"
    assert "no pretrained weights" in r.skipped[0]["reason"]
    assert "skipped" in r.summary()


def _row(name: str, latency: float, score: float) -> dict:
    return {"candidate": name, "latency_ms": latency, "logme": score, "control": False}


def test_latency_budget_is_respected() -> None:
    rows = [_row("slow_best", 50.0, 3.0), _row("fast_ok", 10.0, 2.0), _row("fast_bad", 8.0, 1.0)]
    rank_rows(rows, {"rank_by": "logme", "latency_budget_ms": 20.0, "scores": ["logme"]})
    assert [r["candidate"] for r in rows] == ["fast_ok", "fast_bad", "slow_best"]
    assert [r["within_budget"] for r in rows] == [True, True, False]
    assert [r["pareto"] for r in rows] == [True, True, True]
    # no budget: the best score wins whatever its latency
    rank_rows(rows, {"rank_by": "logme", "latency_budget_ms": None, "scores": ["logme"]})
    assert rows[0]["candidate"] == "slow_best" and rows[0]["within_budget"] is None


def test_budget_nobody_meets_gives_no_pick(tiny_folder_session: Path) -> None:
    r = select_models(
        tiny_folder_session,
        ["test_resnet"],
        weights="none",
        image_size=32,
        sample_per_class=3,
        scores=("logme",),
        latency_budget_ms=1e-6,
        repeats=1,
        memory=False,
    )
    assert r.rows[0]["within_budget"] is False and r.top is None and r.fit_command is None
    assert "no candidate meets the latency budget" in r.warnings[0]


def test_consensus_averages_scaled_ranks() -> None:
    rows = [{"a": 1.0, "b": 9.0}, {"a": 2.0, "b": 8.0}, {"a": 3.0, "b": 7.5}]
    assert consensus(rows, ["a", "b"]) == [0.5, 0.5, 0.5]
    assert consensus(rows, ["a"]) == [0.0, 0.5, 1.0]


def test_bad_arguments_raise_clear_errors(tiny_folder_session: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: logme"):
        select_models(tiny_folder_session, ["test_resnet"], scores=("logmee",))
    with pytest.raises(ConfigError, match="not both"):
        select_models(tiny_folder_session, ["test_resnet"], available=True)
    with pytest.raises(ConfigError, match="positive"):
        select_models(tiny_folder_session, ["test_resnet"], latency_budget_ms=-1)
    with pytest.raises(UnknownNameError, match="resnt"):
        select_models(tiny_folder_session, ["resnt_typo"], weights="none", memory=False, repeats=1)


def test_parse_latency() -> None:
    assert parse_latency("20ms") == 20.0
    assert parse_latency("0.02s") == pytest.approx(20.0)
    assert parse_latency(" 500us ") == pytest.approx(0.5)
    assert parse_latency("15") == 15.0
    with pytest.raises(ConfigError, match="20ms, 0.02s"):
        parse_latency("fast")
    with pytest.raises(ConfigError, match="positive"):
        parse_latency("0ms")


def test_fit_command_quotes_paths_and_parses_with_graft_fit() -> None:
    import shlex

    from graft.cli import build_parser

    cmd = fit_command("my data", "tv:mobilenet_v2", image_size=96, device="cuda")
    assert cmd == (
        "graft fit 'my data' --model tv:mobilenet_v2 --image-size 96 --accelerator gpu "
        "--out runs/fit-tv-mobilenet_v2"
    )
    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert (args.data, args.model, args.image_size, args.out) == (
        "my data",
        "tv:mobilenet_v2",
        96,
        "runs/fit-tv-mobilenet_v2",
    )


def test_cli_json_and_errors(
    tiny_folder_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        [
            "select",
            str(tiny_folder_session),
            "--model",
            "test_resnet",
            "--latency-budget",
            "bad",
        ]
    )
    assert code == 2 and "cannot read latency budget 'bad'" in capsys.readouterr().err
    # the CLI builds pretrained models: a tiny model has no weights, so it is skipped, exit 1
    code = main(
        [
            "select",
            str(tiny_folder_session),
            "--model",
            "test_resnet",
            "--sample-per-class",
            "3",
            "--repeats",
            "1",
            "--memory",
            "off",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["skipped"][0]["candidate"] == "test_resnet"
    assert (tmp_path / "selection.json").exists() and (tmp_path / "selection.txt").exists()


@pytest.mark.slow
@pytest.mark.weights
def test_real_weights_give_source_scores_and_beat_the_control(tiny_folder_session: Path) -> None:
    r = select_models(
        tiny_folder_session,
        ["efficientnet_lite0"],
        image_size=32,
        sample_per_class=6,
        scores=("logme", "probe", "leep", "nce"),
        control=True,
        repeats=2,
        memory=False,
    )
    pretrained = r.row("efficientnet_lite0")
    control = r.row("efficientnet_lite0@random")
    assert np.isfinite(pretrained["leep"]) and pretrained["leep"] <= 0
    assert -np.log(3) - 1e-9 <= pretrained["nce"] <= 0  # -H(Y|Z) >= -H(Y) >= -log C
    assert control["leep"] is None and "leep: skipped" in control["score_notes"][0]
    assert pretrained["feature_dim"] == 1280
    assert pretrained["params_m"] == pytest.approx(4.65, abs=0.01)
    assert r.top == "efficientnet_lite0"


def test_a_candidate_that_fails_is_skipped_not_fatal(
    tiny_folder_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graft.select.api as api

    def broken(*args, **kwargs):
        raise RuntimeError("Input size (1x1) too small for the kernel")

    monkeypatch.setattr(api, "measure_cost", broken)
    r = select_models(tiny_folder_session, ["test_resnet"], weights="none", sample_per_class=3)
    assert r.rows == [] and "RuntimeError: Input size (1x1) too small" in r.skipped[0]["reason"]


def test_defaults_are_the_cheap_scores_and_in_process_memory(tiny_folder_session: Path) -> None:
    r = select_models(tiny_folder_session, ["test_resnet"], weights="none", sample_per_class=3)
    assert r.settings["scores"] == ["logme", "knn"] and r.settings["repeats"] == 5
    row = r.rows[0]
    assert "probe" not in row and "hscore" not in row
    assert set(row["score_seconds"]) == {"logme", "knn"}
    if sys.platform.startswith("linux"):
        assert row["memory_method"].startswith("this process") and row["peak_mem_mb"] > 0
    with pytest.raises(UnknownNameError, match="process"):
        select_models(tiny_folder_session, ["test_resnet"], weights="none", memory="proces")
