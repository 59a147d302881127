"""The printed plan, the wall-time estimate (structure, never timings) and the image-size rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from graft.data.image_size import SMALL_SIZE, auto_image_size, choose_image_size, image_sizes
from graft.train import FitConfig, fit
from graft.train.eta import estimate, planned_cache
from graft.train.parts import prepare_fit
from graft.train.plan import ProgressETA, describe, phase_line
from graft.train.recipes import Phase, build_plan


def test_phase_line_names_groups_lrs_and_bn():
    names = ("stem", "blocks.0", "blocks.1", "head")
    head = phase_line(Phase("head", 0, 2, (3,), 3e-3, 1.0, "frozen"), names, cached=True)
    assert (
        head
        == "  epochs 1-2  head   trains head (1 of 4 groups)  lr 0.003  BN frozen  frozen features cached"
    )
    full = phase_line(Phase("full", 2, 1, (0, 1, 2, 3), 1e-3, 10.0, "eval"), names, cached=False)
    assert "epoch 3  full" in full and "all 4 groups" in full and "0.0001 (stem)" in full


def test_time_left_uses_measured_epochs_of_the_same_phase():
    plan = build_plan("auto", 5, 100, 10, epochs=4)  # 2 head + 2 full
    cb = ProgressETA(plan, per_epoch=[1.0, 1.0, 10.0, 10.0])
    assert cb.time_left(1) == 21.0
    cb.measured["head"] = 3.0
    assert cb.time_left(1) == 23.0
    cb.measured["full"] = 5.0
    assert cb.time_left(2) == 10.0 and cb.time_left(4) == 0.0


def test_estimate_covers_every_epoch_and_leaves_the_model_untouched(
    tiny_folder, tiny_opts, tmp_path
):
    cfg = FitConfig(
        data=str(tiny_folder),
        recipe="auto",
        epochs=3,
        out=str(tmp_path / "r"),
        report=False,
        **tiny_opts,
    )
    parts = prepare_fit(cfg, tmp_path / "r")
    before = {k: v.clone() for k, v in parts.model.state_dict().items()}
    cached = planned_cache(cfg, parts.plan, parts.groups, parts.model)
    assert cached == range(0, 1)
    est = estimate(cfg, parts, cached, batches=2)
    assert len(est.per_epoch) == 3 and all(s > 0 for s in est.per_epoch)
    assert est.total == pytest.approx(est.setup + sum(est.per_epoch) + est.final + est.finish)
    assert {"eval_batch", "train_batch_full", "checkpoint"} <= set(est.timings)
    # fixed costs: the frozen cache (not built yet), the bundle and reloading the best weights;
    # no report and no timing probes (report and progress are off in tiny_opts)
    assert set(est.fixed) == {"scan and model", "frozen cache", "best weights reload", "bundle"}
    assert all(v >= 0 for v in est.fixed.values()) and est.fixed["bundle"] > 0
    assert est.setup == pytest.approx(est.fixed["scan and model"] + est.fixed["frozen cache"])
    assert est.finish == pytest.approx(est.fixed["best weights reload"] + est.fixed["bundle"])
    with_report = estimate(cfg.replace(report=True, progress=True), parts, cached, batches=2)
    assert {"report", "timing probes"} <= set(with_report.fixed)
    assert with_report.finish > with_report.fixed["bundle"]
    after = parts.model.state_dict()
    assert all((before[k] == after[k]).all() for k in before)  # BN statistics included
    text = describe(cfg, parts, cached, sized=False)
    assert text.splitlines()[0] == "plan: recipe auto, 3 epochs in total"
    assert "batch 8, 0 loader workers" in text and "frozen-output cache on" in text


def test_fit_prints_plan_estimate_and_progress(tiny_folder, tiny_opts, tmp_path, capsys):
    fit(tiny_folder, recipe="auto", epochs=2, out=str(tmp_path / "r"), report=False,
        **{**tiny_opts, "progress": True})  # fmt: skip
    err = capsys.readouterr().err
    assert "plan: recipe auto, 2 epochs in total" in err and "estimated wall time" in err
    assert "epoch 1/2 (head)" in err and "epoch 2/2 (full)" in err and "left" in err


def test_image_size_rule():
    assert choose_image_size([(28, 28)] * 5, 224)[0] == SMALL_SIZE
    assert choose_image_size([(8, 8), (28, 28), (300, 200)], 224)[0] == SMALL_SIZE  # median 28
    assert choose_image_size([(95, 400)] * 3, 224)[0] == SMALL_SIZE
    assert choose_image_size([(96, 96)] * 3, 224)[0] == 224
    assert choose_image_size([(800, 600)] * 3, 160)[0] == 160  # never above the weights' size
    assert choose_image_size([(28, 28)], 64)[0] == 64  # never above it for small images either
    assert choose_image_size([], 224) == (
        224,
        "no readable training image sizes: the weights' 224 px",
    )


def test_image_sizes_read_headers(tiny_folder):
    files = sorted(p for p in Path(tiny_folder).rglob("*") if p.suffix in (".png", ".jpg"))
    assert set(image_sizes(files)) == {(32, 32)}
    assert len(image_sizes(files, limit=5)) == 5
    assert auto_image_size([(f, 0) for f in files], 224)[0] == SMALL_SIZE


def test_fit_without_image_size_trains_at_the_rule_size(tiny_folder, tiny_opts, tmp_path):
    opts = {k: v for k, v in tiny_opts.items() if k != "image_size"}
    result = fit(
        tiny_folder, recipe="head", epochs=1, out=str(tmp_path / "r"), dry_run=True, **opts
    )
    assert result.config.image_size == min(SMALL_SIZE, 160)  # test_efficientnet's own size is 160
    assert "112x112 px (from the image sizes)" in result.plan_text


def test_plan_shows_a_hybrids_branch_sizes_and_auto_size_reaches_its_branches(
    tiny_folder, tiny_opts, tmp_path
):
    opts = {k: v for k, v in tiny_opts.items() if k not in ("image_size", "model")}
    result = fit(tiny_folder, model="test_efficientnet+test_vit", recipe="head", epochs=1,
                 out=str(tmp_path / "r"), dry_run=True, **opts)  # fmt: skip
    assert result.config.image_size == 112  # 32 px images: the small-image size, under 160 px
    assert "112x112 px (from the image sizes)" in result.plan_text
    line = next(x for x in result.plan_text.splitlines() if "hybrid branches" in x)
    assert line == (
        "  hybrid branches: cnn=test_efficientnet 112x112 px (image_size), "
        "vit=test_vit 112x112 px (image_size)"
    )


def test_plan_shows_a_per_branch_size_and_its_rule(tiny_folder, tiny_opts, tmp_path):
    opts = {k: v for k, v in tiny_opts.items() if k != "model"}
    result = fit(tiny_folder, model="test_efficientnet+test_vit", recipe="head", epochs=1,
                 out=str(tmp_path / "r"), dry_run=True,
                 model_args={"branch_inputs": {"vit": {"input_size": 64}}}, **opts)  # fmt: skip
    assert "cnn=test_efficientnet 32x32 px (image_size), vit=test_vit 64x64 px (branch_inputs)" in (
        result.plan_text
    )
    assert "fixed costs: scan and model" in result.plan_text
