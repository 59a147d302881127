"""Hybrid (``a+b``) candidates in select: per-candidate model args, LEEP/NCE skipped with a note."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graft.cli import main
from graft.commands.select import candidate_arg, model_args_from
from graft.errors import UnknownNameError
from graft.select import SelectionResult, select_models
from graft.select.api import consensus

HYBRID = "test_efficientnet+test_vit"
TINY_HYBRID = {
    "fusion": "gated",
    "proj_dim": 16,
    "branch_kwargs": {"vit": {"img_size": 32}},
    "branch_inputs": {"cnn": {"input_size": 32}},
}
FAST = {"image_size": 32, "sample_per_class": 4, "repeats": 1, "batch_size": 4, "memory": "off"}


@pytest.fixture(scope="module")
def mixed(tiny_folder_session: Path, tmp_path_factory: pytest.TempPathFactory) -> SelectionResult:
    return select_models(
        tiny_folder_session,
        ["test_efficientnet", "test_resnet", HYBRID],
        weights="none",
        scores=("logme", "knn", "leep"),
        model_args={HYBRID: TINY_HYBRID},
        out=tmp_path_factory.mktemp("select-hybrid"),
        **FAST,
    )


def test_hybrid_is_ranked_next_to_plain_candidates(mixed: SelectionResult) -> None:
    assert sorted(mixed.ranking) == sorted(["test_efficientnet", "test_resnet", HYBRID])
    assert mixed.skipped == []
    row = mixed.row(HYBRID)
    assert row["feature_dim"] == 16  # gated fusion with proj_dim=16: the fused width
    assert row["input_size"] == [3, 32, 32] and row["sampled_images"] == 12
    assert np.isfinite(row["logme"]) and 0.0 <= row["knn"] <= 1.0
    assert row["params_m"] > mixed.row("test_efficientnet")["params_m"]  # both branches
    assert [r["rank"] for r in mixed.rows] == [1, 2, 3]
    assert mixed.settings["model_args"] == {HYBRID: TINY_HYBRID}


def test_leep_is_skipped_with_a_note_and_the_ranking_ignores_it(mixed: SelectionResult) -> None:
    row = mixed.row(HYBRID)
    assert row["leep"] is None
    assert row["source_head"].startswith("a hybrid has no pretrained classifier")
    assert any("leep: skipped" in n and "hybrid" in n for n in row["score_notes"])
    plain = mixed.row("test_resnet")  # random weights here: skipped too, for its own reason
    assert any("random weights" in n for n in plain["score_notes"])
    text = mixed.summary()
    assert "scores not computed (shown as -)" in text and f"{HYBRID}: leep: skipped" in text
    saved = json.loads(Path(mixed.files["json"]).read_text())
    saved_row = next(r for r in saved["rows"] if r["candidate"] == HYBRID)
    assert saved_row["leep"] is None and saved_row["score_notes"]


def test_consensus_leaves_out_scores_that_do_not_apply() -> None:
    rows = [{"a": 3.0, "leep": None}, {"a": 2.0, "leep": -1.0}, {"a": 1.0, "leep": -0.5}]
    # 'a' ranks row 0 best; row 0 has no LEEP, so its consensus is its 'a' rank alone
    assert consensus(rows, ["a", "leep"]) == [1.0, 0.25, 0.5]
    failed = [{"a": 1.0, "b": float("nan")}, {"a": 2.0, "b": 0.5}]
    assert consensus(failed, ["a", "b"]) == [0.0, 1.0]  # a failed score (NaN) still ranks last


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a+b:pretrained={cnn: true, vit: false}", ("a+b", "pretrained", {"cnn": True, "vit": False})),
        ("tv:mobilenet_v2:drop_rate=0.1", ("tv:mobilenet_v2", "drop_rate", 0.1)),
        ("fusion=gated", ("*", "fusion", "gated")),
    ],
)  # fmt: skip
def test_candidate_model_arg_syntax(text: str, parsed: tuple) -> None:
    assert candidate_arg(text) == parsed
    assert model_args_from([parsed]) == {parsed[0]: {parsed[1]: parsed[2]}}


def test_model_arg_for_an_unknown_candidate_is_an_error(tiny_folder_session: Path) -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"candidate in model_args 'test_efficientnet\+test_vti'.*Did you mean",
    ):
        select_models(tiny_folder_session, [HYBRID], weights="none",
               model_args={"test_efficientnet+test_vti": {"fusion": "gated"}}, **FAST)  # fmt: skip


def test_unknown_branch_key_stops_select_with_suggestions(
    tiny_folder_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["select", str(tiny_folder_session), "--model", HYBRID, "--image-size", "32",
                 "--model-arg", f"{HYBRID}:pretrained={{cnn: true, vitt: false}}",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown branch key in pretrained 'vitt'" in err and "Did you mean: vit" in err
    assert "Traceback" not in err


def test_real_cnn_with_random_vit_branch_from_the_cli(
    tiny_folder_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Lite0 (shipped weights) vs Lite0+test_vit where the ViT (no offline weights) starts random."""
    hybrid = "efficientnet_lite0+test_vit"
    common = ["select", str(tiny_folder_session), "--image-size", "32", "--sample-per-class", "4",
              "--repeats", "1", "--batch-size", "4", "--memory", "off", "--scores", "logme,knn,leep,nce"]  # fmt: skip
    branch_args = ["--model-arg", f"{hybrid}:branch_kwargs={{vit: {{img_size: 32}}}}",
                   "--model-arg", f"{hybrid}:branch_inputs={{cnn: {{input_size: 32}}}}"]  # fmt: skip

    # without per-branch pretrained: the hybrid is skipped, with the option that fixes it
    only = ["--model", hybrid, *branch_args, "--out", str(tmp_path / "a"), "--json"]
    assert main([*common, *only]) == 1  # nothing measured
    first = json.loads(capsys.readouterr().out)
    (skip,) = first["skipped"]
    assert skip["candidate"] == hybrid and "test_vit" in skip["reason"]
    assert f"--model-arg '{hybrid}:pretrained=" in skip["reason"]

    common += ["--model", f"efficientnet_lite0,{hybrid}"]
    pretrained = ["--model-arg", f"{hybrid}:pretrained={{cnn: true, vit: false}}"]
    assert main([*common, *branch_args, *pretrained, "--out", str(tmp_path / "b"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["candidate"]: r for r in result["rows"]}
    assert set(rows) == {"efficientnet_lite0", hybrid} and result["skipped"] == []
    plain, mixed = rows["efficientnet_lite0"], rows[hybrid]
    assert plain["leep"] < 0 and np.isfinite(plain["nce"])  # Lite0 keeps its ImageNet head
    assert mixed["leep"] is None and mixed["nce"] is None
    assert [n.split(":")[0] for n in mixed["score_notes"]] == ["leep", "nce"]
    assert mixed["feature_dim"] == plain["feature_dim"] + 64  # concat: Lite0 1280 + test_vit 64
    text = (tmp_path / "b" / "selection.txt").read_text()
    assert f"{hybrid}: nce: skipped" in text and "a hybrid has no pretrained classifier" in text
    if result["top"] == hybrid:  # the fit command carries the candidate's model args
        assert "--model-arg 'pretrained={cnn: true, vit: false}'" in result["fit_command"]


def test_hybrid_candidates_cost_their_branches_at_the_image_size(
    tiny_folder_session: Path,
) -> None:
    """No per-branch sizes: the hybrid's MACs are its two branches' at image_size (what fit runs)."""
    import timm

    from graft.select.cost import count_macs

    pair = "test_efficientnet+test_resnet"
    result = select_models(tiny_folder_session, [pair], weights="none", scores=("knn",),
                    model_args={pair: {"fusion": "concat"}}, **FAST)  # fmt: skip
    branches = sum(
        count_macs(timm.create_model(n, num_classes=0).eval(), (3, 32, 32)) for n in pair.split("+")
    )
    assert result.row(pair)["gmacs"] == pytest.approx(branches / 1e9, rel=0.01)
    assert result.row(pair)["input_size"] == [3, 32, 32]
