"""``graft distill`` command line: options mirror graft fit's, errors are one clean line."""

from __future__ import annotations

import dataclasses

from graft.cli import build_parser, main
from graft.train.config import FitConfig


def test_distill_parser_has_fit_and_distill_options() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["distill", "data", "--teacher", "t/bundle", "--student", "tv:mobilenet_v2", "--alpha", "0.5",
         "--temperature", "2", "--feature-pairs", "layer3:blocks.4", "--feature-loss", "at", "--no-feature-norm",
         "--recipe", "full", "--epochs", "3", "--image-size", "96", "--lr", "1e-3", "--flip", "--out", "runs/x"]
    )  # fmt: skip
    assert (args.teacher, args.student, args.alpha, args.temperature) == (
        "t/bundle",
        "tv:mobilenet_v2",
        0.5,
        2.0,
    )
    assert (args.feature_pairs, args.feature_loss, args.feature_norm) == (
        "layer3:blocks.4",
        "at",
        False,
    )
    assert (args.recipe, args.epochs, args.image_size, args.lr, args.flip) == (
        "full",
        3,
        96,
        1e-3,
        True,
    )
    fit_fields = {f.name for f in dataclasses.fields(FitConfig)} - {"data", "model", "cache_frozen"}
    assert fit_fields <= set(vars(args))
    assert args.batch_size is None  # not given: graft fit's default applies
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[
        "distill"
    ]
    clip = next(a for a in sub._actions if a.dest == "grad_clip")
    assert args.grad_clip is None and "off for distill" in clip.help  # distill's default, not fit's


def test_distill_cli_errors_cleanly(tiny_folder, capsys) -> None:
    code = main(
        [
            "distill",
            str(tiny_folder),
            "--student",
            "test_resnet",
            "--weights",
            "none",
            "--out",
            str(tiny_folder.parent / "run"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "graft distill: error:" in err and "teacher" in err and "Traceback" not in err
