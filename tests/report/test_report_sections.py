"""The report's content: every section, one learning-rate curve per parameter group, thumbnails,
notes for missing pieces, evaluation outputs, escaping, and a self-contained page."""

from __future__ import annotations

import base64
import csv
import io
import logging
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from reportparse import parse_report

from graft.report import SECTION_IDS, write_report, write_report_safely
from graft.report.curves import order_groups, step_positions


def copy_run(run: Path, dest: Path) -> Path:
    return Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "*.html")))


def group_names(run: Path) -> list[str]:
    from graft.bundle import load_bundle
    from graft.train.groups import ModelGroups

    return list(ModelGroups.of(load_bundle(run / "bundle").model).names)


def test_every_section_is_there_in_order(tiny_report: Path) -> None:
    page = parse_report(tiny_report)
    assert page.sections == list(SECTION_IDS)
    assert page.data["sections"] == list(SECTION_IDS)
    assert not page.notes["curves"] and not page.notes["gradcam"] and not page.notes["dataset"]


def test_one_learning_rate_curve_per_parameter_group_and_the_unfreezing_events(
    tiny_run: Path, tiny_report: Path
) -> None:
    names = group_names(tiny_run)
    with open(tiny_run / "logs" / "metrics.csv", newline="") as f:
        columns = csv.DictReader(f).fieldnames or []
    assert {f"lr_{n}" for n in names[:-1]} | {"lr_head"} <= set(columns)  # every group was logged
    curves = parse_report(tiny_report).data["curves"]
    assert curves["lr"] == names[:-1] + ["head"]  # one line per group, stem -> head
    assert len(curves["lr"]) >= 2
    assert curves["events"] == [0, 1, 2]  # the progressive recipe's phases
    assert curves["loss"] == ["train", "val"] and curves["accuracy"] == ["train", "val"]
    text = parse_report(tiny_report).text["curves"]
    assert "epoch 1: stage1 (3 groups trainable)" in text


def test_images_are_embedded_pngs_and_counts_match_the_options(tiny_report: Path) -> None:
    page = parse_report(tiny_report)
    assert all(not link.startswith(("http:", "https:", "//")) for link in page.links)
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        decoded = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1])))
        assert decoded.width > 0 and decoded.height > 0
    assert len(page.images_in("gradcam", "gradcam")) == 4  # --gradcam 4, 6 validation images
    wrong = int(re.search(r"(\d+) of 6 predictions are wrong", page.text["mistakes"]).group(1))
    mistakes = page.images_in("mistakes", "mistake")
    assert len(mistakes) == min(3, wrong)
    assert all(m["data-true"] != m["data-predicted"] for m in mistakes)
    confidences = [float(m["data-confidence"]) for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    assert (
        len(page.images_in("curves", "plot")) == 1
        and len(page.images_in("confusion-matrix", "plot")) == 1
    )
    assert page.data["images"]["gradcam"] == 4


def test_per_class_table_and_header(tiny_report: Path) -> None:
    page = parse_report(tiny_report)
    for name in ("blue", "green", "red"):
        assert name in page.text["per-class"]
    header = page.text["header"]
    assert (
        "test_efficientnet" in header and "3 x 32 x 32" in header and "pretrained: mean" in header
    )
    assert "val_acc" in header and "0.1.0" in header
    assert "3 classes, 18 train / 6 val / 0 test images" in page.text["dataset"]
    assert "recipe: progressive" in page.text["config"]


def test_missing_pieces_become_notes_not_errors(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(
        re.sub(r"(?m)^data: .*$", f"data: {tmp_path / 'gone'}", config)
    )
    (run / "metrics.json").unlink()
    page = parse_report(write_report(run, gradcam=2, mistakes=2))
    assert page.sections == list(SECTION_IDS)
    for section in ("confusion-matrix", "per-class", "mistakes", "gradcam", "dataset"):
        assert any("is not there any more" in n for n in page.notes[section]), section
    assert "val_acc" in page.text["header"]  # final metrics from the bundle instead
    assert page.data["curves"]["events"] == [0, 1, 2]  # phases from the bundle's recipe

    shutil.rmtree(run / "bundle")
    page = parse_report(write_report(run, gradcam=2, mistakes=2))
    assert page.sections == list(SECTION_IDS)
    assert any("no bundle" in n for n in page.notes["header"])
    assert len(page.images_in("curves", "plot")) == 1  # curves still drawn from metrics.csv


def test_evaluation_outputs_are_used_and_evaluate_writes_the_report(
    tiny_run: Path, tmp_path: Path
) -> None:
    from graft.inference import evaluate

    run = copy_run(tiny_run, tmp_path / "run")
    data = Path(__import__("yaml").safe_load((run / "config.yaml").read_text())["data"])
    evaluate(run / "bundle", data, split="all", out=run / "eval")
    page = parse_report(run / "eval" / "report.html")  # written by evaluate
    assert page.sections == list(SECTION_IDS)
    assert (
        "graft evaluate outputs in" in page.text["per-class"]
        and "24 images" in page.text["per-class"]
    )
    assert len(page.images_in("gradcam", "gradcam")) == 8
    page = parse_report(write_report(run, gradcam=0, mistakes=0))  # finds run/eval by itself
    assert "graft evaluate outputs in" in page.text["confusion-matrix"]
    assert not page.images_in("gradcam", "gradcam") and not page.images_in("mistakes", "mistake")


def test_text_is_escaped(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    with open(run / "config.yaml", "a") as f:
        f.write('# <script>alert("x")</script> & <img src=x>\n')
    html = write_report(run, gradcam=0, mistakes=0).read_text()
    assert "<script>alert" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x&gt;" in html


def test_write_report_safely_logs_instead_of_raising(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="graft.report"):
        assert write_report_safely(tmp_path / "missing") is None
    assert "could not be written" in caplog.text and "does not exist" in caplog.text


def test_group_order_and_step_positions() -> None:
    events = [{"trainable": ["head"]}, {"trainable": ["stem", "blocks.0", "blocks.10", "head"]}]
    assert order_groups({"head", "blocks.10", "blocks.0", "stem"}, events) == [
        "stem",
        "blocks.0",
        "blocks.10",
        "head",
    ]
    assert order_groups({"head", "blocks.10", "blocks.2", "stem"}, []) == [
        "stem",
        "blocks.2",
        "blocks.10",
        "head",
    ]
    rows = [{"epoch": 0.0, "step": float(s), "lr_head": 1.0} for s in range(4)]
    rows += [
        {"epoch": 0.0, "step": 3.0, "val_loss": 1.0},
        {"epoch": 1.0, "step": 4.0, "lr_head": 1.0},
    ]
    assert step_positions(rows, [r for r in rows if "lr_head" in r]) == pytest.approx(
        [0, 0.25, 0.5, 0.75, 1.0]
    )


def test_group_lrs_of_older_runs_are_reconstructed_exactly_from_the_head(
    tiny_run: Path, tmp_path: Path
) -> None:
    from graft.report.collect import read_run
    from graft.report.curves import lr_series, reconstruct_group_lrs

    run = read_run(tiny_run)
    logged = lr_series(run)
    rebuilt = reconstruct_group_lrs(
        logged["head"], run.bundle_meta["recipe"]["phases"], list(logged)
    )
    assert list(rebuilt) == list(logged)
    for name in logged:
        assert rebuilt[name][0] == logged[name][0]
        assert rebuilt[name][1] == pytest.approx(logged[name][1], rel=1e-5, abs=1e-12)
    assert any(v > 0 for v in logged["stem"][1]) and any(v == 0 for v in logged["stem"][1])

    old = copy_run(tiny_run, tmp_path / "old")  # as written before every group was logged
    with open(old / "logs" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [k for k in rows[0] if not k.startswith("lr_") or k == "lr_head"]
    with open(old / "logs" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keep, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    page = parse_report(write_report(old, gradcam=0, mistakes=0))
    assert page.data["curves"]["lr"] == list(logged)
    assert any("reconstructed" in n for n in page.notes["curves"])
