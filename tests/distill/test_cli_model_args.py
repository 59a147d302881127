"""``graft distill`` takes every ``graft fit`` flag, ``--model-arg KEY=VALUE`` included."""

from __future__ import annotations

from types import SimpleNamespace

import graft.distill
from graft.cli import build_parser


def test_model_arg_reaches_distill_as_a_mapping(monkeypatch):
    seen = {}

    class Result:
        report, bundle, run_dir, metrics = "report line", "b", "r", {}
        teacher = student = SimpleNamespace(name="m", params=1, latency_ms=1.0, accuracy=None)

    def fake_distill(data, **kwargs):
        seen.update(kwargs, data=data)
        return Result()

    monkeypatch.setattr(graft.distill, "distill_model", fake_distill)
    args = build_parser().parse_args(
        ["distill", "data/x", "--teacher", "runs/t/bundle", "--student", "efficientnet_lite0+vit_tiny",
         "--model-arg", "fusion=gated", "--model-arg", "pretrained={cnn: true, vit: false}",
         "--no-report", "--temperature", "2"]
    )  # fmt: skip
    assert args.func(args) == 0
    assert seen["model_args"] == {"fusion": "gated", "pretrained": {"cnn": True, "vit": False}}
    assert seen["report"] is False and seen["temperature"] == 2.0
    assert seen["student"] == "efficientnet_lite0+vit_tiny" and seen["data"] == "data/x"
