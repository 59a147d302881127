"""``graft distill`` takes every ``graft fit`` flag, ``--model-arg KEY=VALUE`` included."""

from __future__ import annotations

import graft.distill
from graft.cli import build_parser


def test_model_arg_reaches_distill_as_a_mapping(monkeypatch):
    seen = {}

    class Result:
        report, bundle, metrics = "report line", "b", {}

    def fake_distill(data, **kwargs):
        seen.update(kwargs, data=data)
        return Result()

    monkeypatch.setattr(graft.distill, "distill", fake_distill)
    args = build_parser().parse_args(
        ["distill", "data/x", "--teacher", "runs/t/bundle", "--student", "efficientnet_lite0+vit_tiny",
         "--model-arg", "fusion=gated", "--model-arg", "pretrained={cnn: true, vit: false}",
         "--no-report", "--temperature", "2"]
    )  # fmt: skip
    assert args.func(args) == 0
    assert seen["model_args"] == {"fusion": "gated", "pretrained": {"cnn": True, "vit": False}}
    assert seen["report"] is False and seen["temperature"] == 2.0
    assert seen["student"] == "efficientnet_lite0+vit_tiny" and seen["data"] == "data/x"
