"""DistillModule inside graft fit's machinery: plan, unfreezing callback, Lightning Trainer."""

from __future__ import annotations

import lightning.pytorch as pl
import timm
import torch
from torch.utils.data import DataLoader, TensorDataset

from graft.distill.distiller import Distiller
from graft.distill.module import DistillModule
from graft.distill.teacher import Teacher
from graft.train.recipes import build_plan
from graft.train.unfreeze import ProgressiveUnfreezing

CFG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 32, 32)}


def test_progressive_plan_trains_student_and_adapters_teacher_untouched(tmp_path) -> None:
    torch.manual_seed(0)
    student = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    teacher_model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    teacher_state = {k: v.clone() for k, v in teacher_model.state_dict().items()}
    teacher = Teacher(teacher_model, CFG, CFG, layers=["features"], cache=True)
    x = torch.randn(16, 3, 32, 32)
    y = torch.arange(16) % 3
    distiller = Distiller(student, teacher, [("features", "features")], sample=x[:2])
    module = DistillModule(distiller, num_classes=3, alpha=1.0, beta=0.5, label_smoothing=0.1)
    plan = build_plan("progressive", len(module.groups), 16, 8, epochs=2, unfreeze="1:all")
    adapter_before = distiller.adapters[0].proj.weight.detach().clone()
    stem_before = student.conv1[0].weight.detach().clone()
    trainer = pl.Trainer(
        max_epochs=plan.epochs,
        callbacks=[ProgressiveUnfreezing(plan)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    trainer.fit(module, loader)
    assert not torch.equal(distiller.adapters[0].proj.weight, adapter_before)
    assert not torch.equal(student.conv1[0].weight, stem_before)  # unfrozen at epoch 1
    assert all(torch.equal(teacher_state[k], v) for k, v in teacher_model.state_dict().items())
    assert teacher.cache.hits == 16 and len(teacher.cache) == 16  # epoch 2 served from the cache
    metrics = trainer.logged_metrics
    assert {"train_ce", "train_kd", "train_feat"} <= set(metrics)
    assert all(not k.startswith("adapters") for k in student.state_dict())
    assert module.layout[-1]["names"][0].startswith("adapters.")
