"""graft ensemble: weights chosen on validation, the bundle kind, predict/evaluate equal the
weighted average of the members, errors that name the bundle and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import graft
from graft.bundle import load_bundle, save_bundle
from graft.cli import main
from graft.ensembling.weights import choose_weights, log_loss
from graft.errors import ConfigError, GraftError, UnsafeFileError
from graft.inference import evaluate, predict
from graft.inference.inputs import expand_paths

from .conftest import CFG, CLASSES, tiny_model


def _probs(preds) -> np.ndarray:
    out = np.zeros((len(preds), len(CLASSES)))
    for i, row in enumerate(preds):
        for t in row["top_k"]:
            out[i, CLASSES.index(t["label"])] = t["prob"]
    return out


def test_choose_weights_prefers_the_better_member_and_never_loses_to_equal() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    good = np.full((200, 3), 0.1)
    good[np.arange(200), labels] = 0.8
    noise = rng.dirichlet(np.ones(3), 200)
    sel = choose_weights(np.stack([noise, good]), labels)
    assert sum(sel.weights) == pytest.approx(1.0)
    assert sel.weights[1] > 0.8
    assert sel.val_log_loss <= sel.equal["val_log_loss"]
    assert sel.val_acc == 1.0
    # identical members: nothing to gain, equal weights are kept
    same = choose_weights(np.stack([good, good]), labels)
    assert same.weights == [0.5, 0.5] and same.method.startswith("equal")
    assert log_loss(good, labels) == pytest.approx(-np.log(0.8))


def test_weights_sum_to_one_and_are_chosen_on_val(members, colours, tmp_path) -> None:
    r = graft.ensemble(
        [members["other"], members["good"], members["small"]], data=colours, val_split=0.25,
        out=tmp_path / "ens",
    )  # fmt: skip
    assert sum(r.weights) == pytest.approx(1.0)
    sel = r.selection
    assert sel["val_log_loss"] <= sel["equal_weights"]["val_log_loss"]
    assert str(members["good"]) in r.members
    assert r.weights[r.members.index(str(members["good"]))] == max(r.weights)
    good_alone = sel["members"][1]
    assert good_alone["val_acc"] > 0.6  # the trained member beats chance (1/3) clearly
    assert sel["val_acc"] >= good_alone["val_acc"] - 0.1  # the untrained members barely hurt
    meta = json.loads((r.path / "model.json").read_text())
    assert meta["kind"] == "ensemble" and meta["metrics"]["val_log_loss"] == sel["val_log_loss"]
    b = load_bundle(r.path)
    assert b.kind == "ensemble" and b.classes == CLASSES
    assert b.model.weights.tolist() == pytest.approx(r.weights)
    assert len(r.members) + len(r.dropped) == 3


def test_predict_equals_weighted_average_of_members(members, colours, tmp_path) -> None:
    r = graft.ensemble([members["good"], members["other"]], out=tmp_path / "ens")
    assert r.weights == [0.5, 0.5] and r.selection["method"].startswith("equal")
    files, _ = expand_paths([str(colours)])
    files = files[:9]
    got = _probs(predict(r.path, files, top_k=3))
    a = _probs(predict(members["good"], files, top_k=3))
    b = _probs(predict(members["other"], files, top_k=3))
    np.testing.assert_allclose(got, 0.5 * a + 0.5 * b, atol=1e-5)
    acc = evaluate(r.path, colours).accuracy
    assert 0.0 <= acc <= 1.0


def test_bundle_is_self_contained_and_checked(members, tmp_path) -> None:
    src = tmp_path / "src"
    shutil.copytree(members["other"], src / "a")
    shutil.copytree(members["small"], src / "b")
    r = graft.ensemble([src / "a", src / "b"], out=tmp_path / "ens")
    x = torch.rand(2, 3, 32, 32)
    before = load_bundle(r.path).logits(x)
    shutil.rmtree(src)
    moved = shutil.move(r.path, tmp_path / "moved")
    torch.testing.assert_close(load_bundle(moved).logits(x), before)
    # nested: an ensemble may be a member of another one
    nested = graft.ensemble([moved, members["good"]], out=tmp_path / "nested")
    assert load_bundle(nested.path).logits(x).shape == (2, 3)
    meta = Path(moved) / "member-0" / "model.json"
    meta.write_text(meta.read_text().replace('"blue"', '"cyan"'))
    with pytest.raises(UnsafeFileError, match="member-0"):
        load_bundle(moved)


def test_errors_name_the_bundle_and_the_fix(members, tmp_path) -> None:
    with pytest.raises(ConfigError, match="at least two member bundles"):
        graft.ensemble([], out=tmp_path / "e")
    odd = save_bundle(tmp_path / "odd", tiny_model(3), ["blue", "green", "yellow"], CFG)
    with pytest.raises(
        ConfigError, match=r"odd.*same classes.*only in this one: \['yellow'\]"
    ) as e:
        graft.ensemble([members["good"], odd], out=tmp_path / "e")
    assert "Fit every member on the same data folder" in str(e.value)
    with pytest.raises(ConfigError, match="out is required"):
        graft.ensemble([members["good"], members["other"]])


def test_cli_writes_the_bundle_and_json(members, colours, tmp_path, capsys) -> None:
    out = tmp_path / "ens"
    argv = ["ensemble", str(members["good"]), str(members["other"]), "--out", str(out),
            "--data", str(colours), "--val-split", "0.25", "--json"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sum(doc["weights"]) == pytest.approx(1.0)
    assert (out / "config.yaml").exists() and load_bundle(out).kind == "ensemble"
    assert main(["ensemble", str(members["good"]), "--out", str(tmp_path / "x")]) == 2
    assert "at least two" in capsys.readouterr().err


def test_onnx_members_are_refused_with_the_source_named(members, tmp_path) -> None:
    exported = graft.export_model(members["other"], out=tmp_path / "onnx", check_size=2).path
    with pytest.raises(GraftError, match="'onnx' bundle.*PyTorch bundles"):
        graft.ensemble([members["good"], exported], out=tmp_path / "e")


def test_default_split_is_fits_so_members_never_trained_on_it() -> None:
    import inspect

    from graft.commands.ensemble import EnsembleOptions
    from graft.train.config import FitConfig

    fit_default = FitConfig().val_split
    assert inspect.signature(graft.ensemble).parameters["val_split"].default == fit_default
    assert EnsembleOptions().val_split == fit_default
    assert inspect.signature(graft.ensemble).parameters["seed"].default == FitConfig().seed
