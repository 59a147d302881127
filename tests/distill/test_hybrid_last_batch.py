"""distill on fit's code path: a hybrid student's fusion trains in the head phase; a last training
batch of one image does not crash BatchNorm (distill and fit share the data module)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from graft.bundle import load_bundle
from graft.data import scan_dataset
from graft.distill import distill
from graft.train import fit
from graft.train.datamodule import FitDataModule

HYBRID = "test_efficientnet+test_vit"
TINY_HYBRID = {
    "branch_kwargs": {"test_vit": {"img_size": 32}},
    "branch_inputs": {"test_efficientnet": {"input_size": 48}},
    "fusion": "gated",
    "proj_dim": 8,
}


class _Initial(pl.Callback):
    """Keeps a copy of the student's weights as training starts."""

    state: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.state = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}


def test_hybrid_student_trains_its_fusion_in_the_head_phase(
    tiny_folder_session: Path, teacher_bundle: Path, tmp_path: Path
) -> None:
    initial = _Initial()
    result = distill(
        str(tiny_folder_session), teacher=str(teacher_bundle), student=HYBRID, weights="none",
        model_args=TINY_HYBRID, recipe="head", epochs=1, batch_size=8, lr=0.05, augment="none",
        feature_pairs="none", workers=0, progress=False, latency=False, callbacks=[initial], out=str(tmp_path / "kd"),
    )  # fmt: skip
    trained = load_bundle(result.bundle).model.state_dict()
    changed = {k for k, v in initial.state.items() if not torch.equal(v, trained[k])}
    fusion = {k for k in initial.state if k.startswith("fusion.") and "weight" in k}
    assert fusion and fusion <= changed  # new parameters trained with the head
    assert any(k.startswith("head.") for k in changed)
    frozen = {k for k in changed if k.startswith("branches.")}
    assert not frozen, (
        f"pretrained branches must stay frozen in the head phase: {sorted(frozen)[:3]}"
    )
    phases = load_bundle(result.bundle).meta["recipe"]["phases"]
    assert len(phases[0]["trainable_groups"]) >= 2  # the head's group and the fusion's group


def test_a_last_batch_of_one_image_is_dropped_not_crashing(
    tiny_folder_session: Path, teacher_bundle: Path, tmp_path: Path
) -> None:
    # 36 images, 10% validation -> 33 train (some classes round up): batch 8 leaves exactly 1
    splits = scan_dataset(str(tiny_folder_session), val_split=0.1, seed=0)
    n = len(splits.train)
    batch = next(b for b in range(4, n) if n % b == 1)
    common = {"weights": "none", "image_size": 16, "recipe": "full", "epochs": 1,
              "batch_size": batch, "workers": 0, "progress": False}  # fmt: skip
    # test_efficientnet at 16 px ends on a 1x1 map: BatchNorm in train mode fails on one image
    r = distill(str(tiny_folder_session), teacher=str(teacher_bundle), student="test_efficientnet",
                feature_pairs="none", latency=False, out=str(tmp_path / "kd"), **common)  # fmt: skip
    assert r.metrics["epochs"] == 1.0 and (r.run_dir / "bundle" / "model.json").is_file()
    r = fit(
        str(tiny_folder_session), model="test_efficientnet", out=str(tmp_path / "fit"), **common
    )
    assert r.metrics["epochs"] == 1.0


def test_train_loader_drops_only_a_remainder_of_one(tiny_folder_session: Path) -> None:
    splits = scan_dataset(str(tiny_folder_session), val_split=0.1, seed=0)
    n = len(splits.train)
    cfg = {"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3, "crop_pct": 1.0,
           "interpolation": "bilinear"}  # fmt: skip

    def sizes(batch: int, drop_last: bool = False) -> list[int]:
        dm = FitDataModule(splits, cfg, batch_size=batch, augment="none", workers=0,
                           drop_last=drop_last)  # fmt: skip
        return [len(y) for _, y in dm.train_dataloader()]

    one = next(b for b in range(4, n) if n % b == 1)
    assert sizes(one) == [one] * (n // one)  # the single leftover image is dropped
    two = next(b for b in range(4, n) if n % b >= 2)
    assert sizes(two) == [two] * (n // two) + [n % two]  # larger remainders are kept
    assert sizes(two, drop_last=True) == [two] * (n // two)  # mixup's drop_last still applies
    assert sizes(n + 5) == [n]  # a single partial batch is never dropped


class _BatchKinds(pl.Callback):
    """Records the number of fields of each training batch (3: cached features + teacher logits)."""

    def __init__(self) -> None:
        self.fields: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.fields.append(len(batch))


def test_logit_kd_on_cached_backbone_features_equals_the_uncached_run(
    tiny_folder_session: Path, teacher_bundle: Path, tmp_path: Path
) -> None:
    common = {"student": "test_efficientnet", "weights": "none", "image_size": 32, "recipe": "head",
              "epochs": 2, "batch_size": 8, "lr": 0.05, "augment": "none", "flip": False,
              "feature_pairs": "none", "workers": 0, "progress": False, "latency": False}  # fmt: skip
    data, teacher = str(tiny_folder_session), str(teacher_bundle)
    kinds, plain_kinds = _BatchKinds(), _BatchKinds()
    cached = distill(data, teacher=teacher, callbacks=[kinds], out=str(tmp_path / "c"), **common)
    plain = distill(data, teacher=teacher, cache_frozen=False, callbacks=[plain_kinds],
                    out=str(tmp_path / "p"), **common)  # fmt: skip
    assert set(kinds.fields) == {3} and set(plain_kinds.fields) == {2}  # cached vs image batches
    head_c = load_bundle(cached.bundle).model.get_classifier().weight
    head_p = load_bundle(plain.bundle).model.get_classifier().weight
    torch.testing.assert_close(head_c, head_p, atol=1e-4, rtol=1e-3)
    assert cached.metrics["val_loss"] == pytest.approx(plain.metrics["val_loss"], abs=1e-4)
    assert "train_kd" in (cached.run_dir / "metrics.csv").read_text().splitlines()[0]
