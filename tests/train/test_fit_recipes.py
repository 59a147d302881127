"""Each recipe on a tiny model: it learns, frozen weights and frozen BatchNorm statistics stay
bit-for-bit identical, and unfreezing happens at the planned epochs."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from safetensors.torch import load_file

from graft.models import create_model, param_groups
from graft.train import FitConfig, fit

SEED = 5


def _initial_state(opts: dict) -> dict[str, torch.Tensor]:
    pl.seed_everything(SEED, verbose=False)
    model = create_model(opts["model"], num_classes=3, pretrained=False)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _group_keys(opts: dict) -> list[list[str]]:
    """Per group: its parameters plus the BatchNorm buffers of the modules they belong to."""
    model = create_model(opts["model"], num_classes=3, pretrained=False)
    buffers = [n for n, _ in model.named_buffers()]
    out = []
    for _, names in param_groups(model):
        modules = {n.rsplit(".", 1)[0] for n in names}
        out.append(names + [b for b in buffers if b.rsplit(".", 1)[0] in modules])
    return out


def _changed(before: dict, after: dict, keys: list[str]) -> list[str]:
    return [k for k in keys if not torch.equal(before[k], after[k])]


def _fit(folder, tmp_path, opts, **kw):
    result = fit(folder, out=str(tmp_path / kw.get("recipe", "run")), seed=SEED, **{**opts, **kw})
    return result, load_file(str(result.bundle / "model.safetensors"))


def test_head_recipe_learns_and_leaves_the_backbone_untouched(tiny_folder, tiny_opts, tmp_path):
    before = _initial_state(tiny_opts)
    result, after = _fit(tiny_folder, tmp_path, tiny_opts, recipe="head", epochs=6, lr=0.05)
    groups = _group_keys(tiny_opts)
    assert all(
        not _changed(before, after, keys) for keys in groups[:-1]
    )  # bit for bit, BN stats too
    assert _changed(before, after, groups[-1])
    losses = [h["train_loss_epoch"] for h in result.history]
    assert losses[-1] < losses[0]


def test_freeze_upto_trains_only_upper_groups(tiny_folder, tiny_opts, tmp_path):
    before = _initial_state(tiny_opts)
    result, after = _fit(
        tiny_folder, tmp_path, tiny_opts, recipe="freeze-upto", freeze_upto=3, epochs=3, lr=0.01
    )
    groups = _group_keys(tiny_opts)
    assert all(not _changed(before, after, keys) for keys in groups[:3])
    assert all(_changed(before, after, keys) for keys in groups[3:])
    losses = [h["train_loss_epoch"] for h in result.history]
    assert losses[-1] < losses[0]


def test_full_recipe_trains_everything(tiny_folder, tiny_opts, tmp_path):
    before = _initial_state(tiny_opts)
    result, after = _fit(tiny_folder, tmp_path, tiny_opts, recipe="full", epochs=3, lr=0.01)
    assert all(_changed(before, after, keys) for keys in _group_keys(tiny_opts))
    losses = [h["train_loss_epoch"] for h in result.history]
    assert losses[-1] < losses[0]


def test_progressive_unfreezes_at_the_planned_epochs(tiny_folder, tiny_opts, tmp_path):
    before = _initial_state(tiny_opts)
    result, after = _fit(
        tiny_folder,
        tmp_path,
        tiny_opts,
        recipe="progressive",
        unfreeze="1:+1,2:+2",
        epochs=3,
        lr=0.01,
    )
    groups = _group_keys(tiny_opts)
    n = len(groups)
    assert [e["epoch"] for e in result.events] == [0, 1, 2]
    assert [len(e["trainable"]) for e in result.events] == [1, 2, 4]
    assert all(not _changed(before, after, keys) for keys in groups[: n - 4])
    assert all(_changed(before, after, keys) for keys in groups[n - 4 :])
    assert [h["phase"] for h in result.history] == ["stage0", "stage1", "stage2"]


def test_auto_recipe_outputs_and_config_roundtrip(tiny_folder, tiny_opts, tmp_path):
    result, _ = _fit(tiny_folder, tmp_path, tiny_opts, recipe="auto", epochs=3, head_epochs=2)
    run = result.run_dir
    for name in ("config.yaml", "metrics.csv", "metrics.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt",
                 "bundle/model.safetensors", "bundle/model.json"):  # fmt: skip
        assert (run / name).is_file(), name
    cfg = FitConfig.load(run / "config.yaml")
    assert cfg == result.config and cfg.recipe == "auto" and cfg.seed == SEED
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["epoch", "phase", "train_loss_epoch", "train_acc"]
    assert [h["phase"] for h in result.history] == ["head", "head", "full"]
    # the checkpoint loads with weights_only=True: no pickled code
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["callbacks"]["ProgressiveUnfreezing"]["phase"] == 1
    assert ckpt["callbacks"]["ProgressiveUnfreezing"]["layout"][0][2]  # parameter names recorded


def test_mixup_cutmix_and_ema_run(tiny_folder, tiny_opts, tmp_path):
    extra = {"mixup": 0.2, "cutmix": 1.0, "ema": True, "ema_decay": 0.9}
    result, after = _fit(
        tiny_folder, tmp_path, tiny_opts, recipe="full", epochs=2, lr=0.01, **extra
    )
    assert result.metrics["val_loss"] > 0 and len(result.history) == 2
    assert not any(
        k.startswith("ema") for k in after
    )  # the bundle holds the EMA weights as the model
