"""Distiller: dry-run shape discovery, adapters per pair, gradients reach student and adapters only."""

from __future__ import annotations

import timm
import torch

from graft.distill.distiller import Distiller
from graft.distill.losses import total_loss
from graft.distill.teacher import Teacher

CFG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 32, 32)}
VIT_CFG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 160, 160)}


def _models():
    torch.manual_seed(0)
    student = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    teacher = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    return student, teacher


def test_adapters_built_from_dry_run_and_trained_with_student() -> None:
    student, teacher_model = _models()
    t_before = {k: v.clone() for k, v in teacher_model.state_dict().items()}
    teacher = Teacher(teacher_model, CFG, CFG, layers=["features", "blocks.2"])
    d = Distiller(
        student,
        teacher,
        [("features", "features"), ("layer2", "blocks.2")],
        sample=torch.randn(2, 3, 32, 32),
    )
    assert len(d.adapters) == 2
    assert d.adapters[0].proj.in_channels == 96 and d.adapters[0].proj.out_channels == 256
    assert not any(n.startswith("teacher") or "_teacher" in n for n, _ in d.named_parameters())
    opt = torch.optim.SGD(d.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    d.train()
    out = d.terms(x)
    loss = total_loss(torch.nn.functional.cross_entropy(out.logits, y), out.kd, out.features)
    loss.backward()
    assert d.adapters[1].proj.weight.grad.abs().sum() > 0
    assert student.conv1[0].weight.grad.abs().sum() > 0
    opt.step()
    assert all(torch.equal(t_before[k], v) for k, v in teacher_model.state_dict().items())
    assert out.kd.item() > 0 and all(f.item() > 0 for f in out.features)


def test_vit_teacher_cnn_student_attention_transfer() -> None:
    torch.manual_seed(0)
    student = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    vit = timm.create_model("test_vit", pretrained=False, num_classes=3)
    teacher = Teacher(vit, VIT_CFG, CFG, layers=["blocks.1"])  # student 64 px -> teacher 160 px
    d = Distiller(
        student,
        teacher,
        [("layer3", "blocks.1")],
        sample=torch.randn(2, 3, 64, 64),
        feature_loss="at",
    )
    adapter = d.adapters[0]
    assert adapter.proj is None and adapter.teacher_prefix == 1 and adapter.grid == (10, 10)
    out = d.terms(torch.randn(2, 3, 64, 64))
    assert out.features[0].dim() == 0 and out.features[0].item() > 0
    assert torch.equal(d(torch.ones(1, 3, 64, 64)), student(torch.ones(1, 3, 64, 64)))
