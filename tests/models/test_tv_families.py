"""Every torchvision family the adapter supports: torchvision's own parameter names and the contract."""

from __future__ import annotations

import pytest
import torch

from graft.models import create_model, param_groups

FAMILY_MEMBERS = {
    "resnet18": 32, "mobilenet_v2": 32, "mobilenet_v3_small": 32, "shufflenet_v2_x0_5": 32, "mnasnet0_5": 32,
    "regnet_y_400mf": 32, "efficientnet_b0": 32, "densenet121": 32, "alexnet": 64, "vgg11": 32,
    "convnext_tiny": 32, "swin_t": 64, "vit_b_16": 224,
}  # fmt: skip
FAST = ["resnet18", "mobilenet_v2"]


def check_family(arch: str, size: int) -> None:
    from torchvision.models import get_model

    torch.manual_seed(0)
    reference = get_model(arch, weights=None)
    m = create_model(f"tv:{arch}", pretrained=False, num_classes=1000)
    assert list(m.state_dict()) == list(reference.state_dict())  # names exactly as torchvision's
    m.load_state_dict(reference.state_dict())
    m.eval(), reference.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(
            m(x), reference(x), atol=1e-5
        )  # same function as torchvision's forward
        pre = m.forward_head(m.forward_features(x), pre_logits=True)
    assert pre.shape == (1, m.num_features)
    groups = param_groups(m)
    assert groups[-1][0] == "head" and len(groups) >= 3
    assert sum(len(g) for _, g in groups) == len(list(m.parameters()))


@pytest.mark.parametrize("arch", FAST)
def test_fast_families(arch):
    check_family(arch, FAMILY_MEMBERS[arch])


@pytest.mark.slow
@pytest.mark.parametrize("arch", [a for a in FAMILY_MEMBERS if a not in FAST])
def test_all_families(arch):
    check_family(arch, FAMILY_MEMBERS[arch])
