"""graft fit --peft lora|dora: only adapters and head train, the bundle holds merged plain weights
(loads and predicts without peft), the adapter file, the footprint metrics, the CLI and errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import lightning.pytorch as pl
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from graft.cli import main
from graft.errors import ConfigError
from graft.models import create_model
from graft.train import FitConfig, fit

pytest.importorskip("peft")

SEED = 3
TINY = {"model": "test_vit", "weights": "none", "image_size": 32, "batch_size": 8, "workers": 0,
        "progress": False, "val_split": 0.25}  # fmt: skip


def _initial_vit(num_classes: int = 3) -> dict[str, torch.Tensor]:
    pl.seed_everything(SEED, verbose=False)  # what fit does before it builds the model
    model = create_model("test_vit", num_classes=num_classes, pretrained=False)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def lora_run(tiny_folder_session, tmp_path_factory):
    """One LoRA fit of test_vit with auto (head phase, then adapters), adapter file written."""
    out = tmp_path_factory.mktemp("lora") / "run"
    opts = {**TINY, "epochs": 4, "head_epochs": 1, "lr": 0.02, "full_lr": 0.02}
    result = fit(tiny_folder_session, out=str(out), seed=SEED, peft="lora", peft_rank=4,
                 peft_save_adapter=True, report=False, **opts)  # fmt: skip
    return result


def test_lora_fit_trains_only_adapters_and_head(lora_run):
    before = _initial_vit()
    after = load_file(str(lora_run.bundle / "model.safetensors"))
    adapter = load_file(str(lora_run.bundle / "adapter.safetensors"))
    assert set(after) == set(before)  # merged: plain parameter names, no peft layers
    targets = {k for k in before if k.endswith(("qkv.weight", "proj.weight", "fc1.weight",
                                                 "fc2.weight")) and k.startswith("blocks.")}  # fmt: skip
    head = {"head.weight", "head.bias"}
    for key in set(before) - targets - head:  # norms, biases, embeddings, patch_embed: untouched
        assert torch.equal(before[key], after[key]), key
    assert all(not torch.equal(before[k], after[k]) for k in targets)  # adapters learned
    for key in targets:  # merged weight = frozen base + (alpha / r) B A, alpha = 2 r
        prefix = key[: -len(".weight")]
        a, b = (
            adapter[f"{prefix}.lora_A.default.weight"],
            adapter[f"{prefix}.lora_B.default.weight"],
        )
        torch.testing.assert_close(after[key], before[key] + 2.0 * b @ a, rtol=1e-4, atol=1e-6)
    assert set(adapter) - {k for k in adapter if ".lora_" in k} == head
    depth = len({k.split(".")[1] for k in targets})
    with safe_open(str(lora_run.bundle / "adapter.safetensors"), "pt") as f:
        written = json.loads(f.metadata()["peft"])
    assert written["targets"] == {"qkv": depth, "proj": depth, "fc1": depth, "fc2": depth}


def test_lora_fit_reports_its_footprint_and_learns(lora_run):
    m = lora_run.metrics
    trainable = sum(
        v.numel() for v in load_file(str(lora_run.bundle / "adapter.safetensors")).values()
    )
    assert m["trainable_params"] == trainable
    assert m["total_params"] == sum(
        v.numel() for v in _initial_vit().values() if v.is_floating_point()
    )
    assert 0 < m["trainable_fraction"] <= 0.10
    assert m["peak_memory_mb"] > 0
    saved = json.loads((lora_run.run_dir / "metrics.json").read_text())["metrics"]
    assert saved["trainable_params"] == trainable and "peak_memory_mb" in saved
    assert m["val_acc"] > 0.5  # 3 colour classes: chance is 1/3
    meta = json.loads((lora_run.bundle / "model.json").read_text())
    assert meta["recipe"]["peft"]["method"] == "lora" and meta["recipe"]["peft"]["merged"]


def test_bundle_predicts_without_peft_and_fit_names_the_extra(
    lora_run, tiny_folder_session, tmp_path
):
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["peft"] = None  # as if peft were not installed
        import graft
        from graft.errors import ConfigError
        from graft.inference import predict
        preds = predict({str(lora_run.bundle)!r}, {str(tiny_folder_session)!r}, device="cpu")
        right = sum(p["label"] == p["path"].split("/")[-2] for p in preds)
        try:
            graft.fit({str(tiny_folder_session)!r}, peft="lora", out={str(tmp_path / "x")!r},
                      model="test_vit", weights="none", progress=False)
            error = ""
        except ConfigError as err:
            error = str(err)
        print(json.dumps({{"n": len(preds), "right": right, "error": error}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["n"] == 36 and out["right"] > 18  # well above chance (12 of 36)
    assert "pip install 'graft[peft]'" in out["error"]


def test_cli_dora_with_chosen_targets(tiny_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["fit", str(tiny_folder), "--model", "test_efficientnet", "--weights", "none",
                 "--image-size", "32", "--batch-size", "8", "--workers", "0", "--epochs", "2",
                 "--peft", "dora", "--peft-rank", "2", "--peft-targets", "conv_pwl,conv_head",
                 "--no-progress", "--no-report", "--json", "--out", str(out)])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert 0 < data["metrics"]["trainable_fraction"] < 0.5
    assert FitConfig.load(out / "config.yaml").peft == "dora"
    plain = create_model("test_efficientnet", num_classes=3, pretrained=False).state_dict()
    assert set(load_file(str(out / "bundle" / "model.safetensors"))) == set(plain)


def test_cli_unknown_target_is_one_line_with_a_suggestion(tiny_folder, tmp_path, capsys):
    code = main(["fit", str(tiny_folder), "--model", "test_vit", "--weights", "none",
                 "--image-size", "32", "--workers", "0", "--epochs", "1", "--peft", "lora",
                 "--peft-targets", "qvk", "--no-progress", "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "Did you mean: qkv" in err


def test_peft_options_need_peft():
    with pytest.raises(ConfigError, match="only apply with --peft"):
        FitConfig(data="d", peft_targets="qkv")
    with pytest.raises(ConfigError, match="peft_rank"):
        FitConfig(data="d", peft="lora", peft_rank=0)
