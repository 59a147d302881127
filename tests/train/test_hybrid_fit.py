"""Fitting a hybrid (``cnn+vit``) through the CLI: --model-arg, new fusion params in head phases."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from graft.cli import main
from graft.errors import ConfigError
from graft.train.cli_options import key_value

HYBRID = "test_efficientnet+test_vit"
ARGS = ["--model", HYBRID, "--image-size", "32", "--batch-size", "8", "--workers", "0",
        "--no-progress", "--val-split", "0.25", "--recipe", "auto", "--head-epochs", "1",
        "--epochs", "2", "--model-arg", "fusion=gated", "--model-arg", "proj_dim=16",
        "--model-arg", "pretrained={cnn: false, vit: false}",
        "--model-arg", "branch_kwargs={vit: {img_size: 32}}"]  # fmt: skip


def test_key_value_parses_yaml_and_rejects_garbage() -> None:
    import argparse

    assert key_value("proj_dim=16") == ("proj_dim", 16)
    assert key_value("pretrained={vit: false}") == ("pretrained", {"vit": False})
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        key_value("fusion")


def test_hybrid_fits_from_the_cli_and_its_bundle_predicts(
    tiny_folder: Path, tmp_path: Path
) -> None:
    from graft.bundle import load_bundle
    from graft.inference.prediction import predict
    from graft.train.config import FitConfig

    run = tmp_path / "run"
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("graft.train")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the CLI sets graft's level to WARNING
    try:
        assert main(["fit", str(tiny_folder), *ARGS, "--out", str(run)]) == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    err = "\n".join(lines)
    cfg = FitConfig.load(run / "config.yaml")
    assert cfg.model_args["fusion"] == "gated" and cfg.model_args["pretrained"] == {
        "cnn": False, "vit": False,
    }  # fmt: skip
    assert "no pooled-feature cache" in err  # the fusion trains in the head phase
    assert "phase head, training 2 of" in err  # head + fusion
    bundle = load_bundle(run / "bundle")
    assert bundle.classes == ["blue", "green", "red"]
    images = sorted((tiny_folder / "red").iterdir())[:3]
    preds = predict(bundle, [str(p) for p in images], top_k=2)
    assert len(preds) == 3
    assert all(r["label"] in bundle.classes and 0 <= r["prob"] <= 1 for r in preds)


def test_head_phase_trains_the_hybrid_fusion() -> None:
    from graft.hybrid import create_hybrid
    from graft.train import FitConfig
    from graft.train.groups import ModelGroups
    from graft.train.parts import make_plan

    model = create_hybrid(HYBRID, 3, pretrained=False, fusion="gated", proj_dim=16,
                          branch_kwargs={"test_vit": {"img_size": 32}})  # fmt: skip
    groups = ModelGroups.of(model)
    cfg = FitConfig(data="d", recipe="auto", epochs=2, head_epochs=1)
    plan = make_plan(cfg, groups, 18, tuple(model.graft_new_params))
    fusion = {groups.group_of()[n] for n, _ in model.named_parameters() if n.startswith("fusion.")}
    head_phase = next(iter(plan))
    assert fusion and set(head_phase.trainable) == fusion | {groups.head}
    assert all(head_phase.lr_of(g, len(groups)) > 0 for g in fusion)


def test_hybrid_refuses_dataset_normalization(tiny_folder: Path, tmp_path: Path) -> None:
    from graft.train import fit

    with pytest.raises(ConfigError, match="each branch normalizes"):
        fit(tiny_folder, model=HYBRID, weights="none", image_size=32, workers=0, progress=False,
            normalization="dataset", model_args={"branch_kwargs": {"test_vit": {"img_size": 32}}},
            out=str(tmp_path / "run"))  # fmt: skip
