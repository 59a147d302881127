"""``graft extract`` / ``graft.extract`` on a hybrid: model args, the fused pooled width, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import graft
from graft.cli import main
from graft.errors import ConfigError
from graft.hybrid import create_hybrid

HYBRID = "test_efficientnet+test_vit"
SIZES = {"branch_kwargs": {"vit": {"img_size": 32}}, "branch_inputs": {"cnn": {"input_size": 32}}}
CNN_WIDTH, VIT_WIDTH = 256, 64  # pooled widths of test_efficientnet and test_vit


@pytest.mark.parametrize(
    ("fusion", "width"),
    [("concat", CNN_WIDTH + VIT_WIDTH), ("gated", 24), ("attention", 48)],
)
def test_extract_gives_the_fused_pooled_width(
    tiny_folder_session: Path, fusion: str, width: int
) -> None:
    args = {**SIZES, "fusion": fusion} | ({} if fusion == "concat" else {"proj_dim": 24})
    f = graft.extract(tiny_folder_session, model=HYBRID, weights="none", model_args=args,
                      image_size=32, workers=0, progress=False)  # fmt: skip
    assert f.features.shape == (36, width)


def test_extract_features_equal_the_hybrid_forward(tiny_folder_session: Path) -> None:
    from graft.data import ImageDataset, build_transforms, resolve_data_config

    model = create_hybrid(HYBRID, num_classes=0, pretrained=False, fusion="gated", **SIZES).eval()
    f = graft.extract(tiny_folder_session, model=model, workers=0, progress=False)
    cfg = resolve_data_config(model.pretrained_cfg)
    ds = ImageDataset([(f.files[0], 0)], build_transforms(cfg, train=False))
    with torch.inference_mode():
        expected = model.forward_head(model.forward_features(ds[0][0][None]), pre_logits=True)
    assert torch.allclose(torch.as_tensor(f.features[0]), expected[0], atol=1e-5)


def test_extract_cli_with_model_args(tiny_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "feats"
    code = main(["extract", str(tiny_folder), "--model", HYBRID, "--weights", "none", "--image-size",
                 "32", "--workers", "0", "--out", str(out), "--model-arg", "fusion=gated",
                 "--model-arg", "proj_dim=8", "--model-arg", "pretrained={cnn: true, vit: false}",
                 "--model-arg", "branch_kwargs={vit: {img_size: 32}}",
                 "--model-arg", "branch_inputs={0: {input_size: 32}}"])  # fmt: skip
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    spec = manifest["settings"]["spec"]
    assert spec["name"] == HYBRID and spec["fusion"] == "gated" and spec["proj_dim"] == 8
    assert spec["branch_kwargs"] == {"test_vit": {"img_size": 32}}
    assert graft.Features.load(out).features.shape == (24, 8)


def test_extract_cli_unknown_branch_key(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["extract", str(tiny_folder), "--model", HYBRID, "--out", str(tmp_path / "f"),
                 "--model-arg", "pretrained={cnn: false, vti: false}"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown branch key in pretrained 'vti'. Did you mean: vit" in err
    assert "Traceback" not in err


def test_model_args_with_a_built_model_is_refused(tiny_folder: Path) -> None:
    model = create_hybrid(HYBRID, num_classes=0, pretrained=False, **SIZES)
    with pytest.raises(ConfigError, match="model_args only apply when model is a name"):
        graft.extract(tiny_folder, model=model, model_args={"fusion": "gated"}, progress=False)


def _branch_sizes(spec: dict) -> dict[str, list[int]]:
    return {name: b["input_size"] for name, b in spec["branch_inputs"].items()}


def test_extract_builds_a_hybrid_name_for_image_size(tiny_folder: Path, tmp_path: Path) -> None:
    from graft.features.extraction import _load_model
    from graft.hybrid import branch_input_sizes

    net, _ = _load_model(HYBRID, "none", None, 32)
    sizes = branch_input_sizes(net)
    assert {k: (b["input_size"], b["rule"]) for k, b in sizes.items()} == {
        "cnn": ([32, 32], "image_size"), "vit": ([32, 32], "image_size")}  # fmt: skip
    assert net.branches["vit"].pos_embed.shape[1] == 2 * 2 + 1  # 16 px patches + class token
    out = tmp_path / "feats"
    f = graft.extract(tiny_folder, model=HYBRID, weights="none", image_size=32, workers=0,
                      progress=False, out=out)  # fmt: skip
    assert f.features.shape == (24, CNN_WIDTH + VIT_WIDTH)
    spec = json.loads((out / "manifest.json").read_text())["settings"]["spec"]
    assert _branch_sizes(spec) == {"test_efficientnet": [32, 32], "test_vit": [32, 32]}


def test_extract_and_probe_cli_pass_image_size_to_a_hybrid(
    tiny_folder: Path, tmp_path: Path
) -> None:
    common = ["--model", HYBRID, "--weights", "none", "--image-size", "32", "--workers", "0"]
    assert main(["extract", str(tiny_folder), *common, "--out", str(tmp_path / "f")]) == 0
    spec = json.loads((tmp_path / "f" / "manifest.json").read_text())["settings"]["spec"]
    assert _branch_sizes(spec) == {"test_efficientnet": [32, 32], "test_vit": [32, 32]}
    assert graft.Features.load(tmp_path / "f").features.shape == (24, CNN_WIDTH + VIT_WIDTH)
    assert (
        main(["probe", str(tiny_folder), *common, "--cv", "2", "--out", str(tmp_path / "p")]) == 0
    )
    spec = json.loads((tmp_path / "p" / "model.json").read_text())["spec"]
    assert _branch_sizes(spec) == {"test_efficientnet": [32, 32], "test_vit": [32, 32]}


def test_probe_api_builds_a_hybrid_name_for_image_size(tiny_folder: Path, tmp_path: Path) -> None:
    r = graft.probe(tiny_folder, model=HYBRID, weights="none", image_size=32, workers=0, cv=2,
                    progress=False, out=tmp_path / "p")  # fmt: skip
    assert r.features.features.shape == (24, CNN_WIDTH + VIT_WIDTH)
    assert r.cv_accuracy > 1 / 3  # three colour classes: above chance
    spec = json.loads((tmp_path / "p" / "model.json").read_text())["spec"]
    assert _branch_sizes(spec) == {"test_efficientnet": [32, 32], "test_vit": [32, 32]}
