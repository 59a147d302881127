"""``epochs`` is the total number of epochs for every recipe; ``auto`` splits it by a rule."""

from __future__ import annotations

import pytest

from graft.errors import ConfigError
from graft.train import fit
from graft.train.recipes import build_plan, split_epochs


@pytest.mark.parametrize("total", [1, 2, 3, 5, 8, 10, 17, 30, 100])
def test_auto_split_sums_to_the_total_and_keeps_both_phases(total):
    head, full = split_epochs(total, auto_head=8)
    assert head + full == total
    assert 1 <= head <= 8
    assert full >= 1 or total == 1


def test_auto_split_table_and_override():
    assert [split_epochs(n, 8) for n in (1, 2, 3, 4, 10, 20, 30)] == [
        (1, 0), (1, 1), (1, 2), (2, 2), (4, 6), (8, 12), (8, 22),
    ]  # fmt: skip
    assert split_epochs(4, 3) == (2, 2) and split_epochs(20, 3) == (3, 17)  # >= 50k images
    assert split_epochs(6, 8, head_epochs=0) == (0, 6)
    assert split_epochs(6, 8, head_epochs=6) == (6, 0)


def test_head_epochs_above_the_total_is_refused():
    with pytest.raises(ConfigError, match="head_epochs=5 exceeds epochs=3"):
        split_epochs(3, 8, head_epochs=5)
    with pytest.raises(ConfigError, match="must be >= 1"):
        build_plan("auto", 7, 100, 8, epochs=0)


@pytest.mark.parametrize(
    "recipe, extra",
    [("auto", {}), ("head", {}), ("full", {}), ("freeze-upto", {"freeze_upto": 2}),
     ("progressive", {"unfreeze": "1:+2,3:all"})],
)  # fmt: skip
@pytest.mark.parametrize("total", [1, 2, 4, 9])
def test_every_recipe_plans_exactly_the_total(recipe, extra, total):
    if recipe == "progressive" and total < 4:
        extra = {"unfreeze": "1:all"} if total > 1 else {"unfreeze": "5:all"}
    plan = build_plan(recipe, 7, 2000, 32, epochs=total, **extra)
    assert plan.epochs == total == sum(p.epochs for p in plan)


def test_auto_without_epochs_keeps_the_dataset_size_rule():
    plan = build_plan("auto", 7, 2000, 32)
    assert [(p.name, p.epochs) for p in plan] == [("head", 8), ("full", 3)]


def test_user_learning_rates_are_used_as_given_with_sgd():
    assert build_plan("head", 7, 100, 8, epochs=2, lr=0.02, optimizer="sgd").phases[0].lr == 0.02
    auto = build_plan("auto", 7, 100, 8, epochs=3, lr=0.02, full_lr=0.004, optimizer="sgd")
    assert [p.lr for p in auto] == [0.02, 0.004]
    default = build_plan("auto", 7, 100, 8, epochs=3, optimizer="sgd")
    assert [p.lr for p in default] == pytest.approx([0.03, 0.01])


def test_fit_auto_two_epochs_runs_a_head_then_a_full_epoch(tiny_folder, tiny_opts, tmp_path):
    result = fit(tiny_folder, recipe="auto", epochs=2, out=str(tmp_path / "r"), report=False,
                 **tiny_opts)  # fmt: skip
    assert [(h["epoch"], h["phase"]) for h in result.history] == [(0, "head"), (1, "full")]
    assert result.metrics["epochs"] == 2.0


def test_fit_auto_one_epoch_trains_the_head_and_says_so(tiny_folder, tiny_opts, tmp_path, capsys):
    opts = {**tiny_opts, "progress": True}
    result = fit(
        tiny_folder, recipe="auto", epochs=1, out=str(tmp_path / "r"), report=False, **opts
    )
    assert [h["phase"] for h in result.history] == ["head"]
    assert result.metrics["epochs"] == 1.0
    assert "--epochs 1: recipe auto trains the head phase only" in capsys.readouterr().err


def test_fit_head_recipe_runs_the_total(tiny_folder, tiny_opts, tmp_path):
    result = fit(tiny_folder, recipe="head", epochs=3, out=str(tmp_path / "r"), report=False,
                 **tiny_opts)  # fmt: skip
    assert len(result.history) == 3 and result.metrics["epochs"] == 3.0


def test_distill_auto_runs_exactly_the_total(tiny_folder, tiny_opts, tmp_path):
    """``graft distill --epochs 2`` with recipe auto: one head and one full epoch, not 8 + 2."""
    import torch

    from graft.bundle import save_bundle
    from graft.data import resolve_data_config, scan_dataset
    from graft.distill import distill
    from graft.models import create_model

    torch.manual_seed(0)
    classes = scan_dataset(tiny_folder).classes
    teacher = create_model("test_efficientnet", num_classes=len(classes), pretrained=False)
    bundle = save_bundle(tmp_path / "teacher", teacher, classes, resolve_data_config(teacher, 32))
    opts = {k: v for k, v in tiny_opts.items() if k != "model"}
    result = distill(str(tiny_folder), teacher=str(bundle), student="test_efficientnet",
                     recipe="auto", epochs=2, out=str(tmp_path / "kd"), report=False,
                     latency=False, **opts)  # fmt: skip
    assert [h["phase"] for h in result.history] == ["head", "full"]
    assert result.config.epochs == 2 and result.config.head_epochs == 1
