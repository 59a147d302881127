"""Freezing by group / index / name glob, trainable counts, and the BatchNorm policy."""

from __future__ import annotations

import pytest
import torch
from model_helpers import WITH_BN, batch, make

from graft.errors import ConfigError, UnknownNameError
from graft.models import (
    freeze,
    frozen_state,
    param_groups,
    set_frozen_state,
    trainable_summary,
    unfreeze,
)


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def group_sizes(model) -> list[int]:
    params = dict(model.named_parameters())
    return [sum(params[n].numel() for n in members) for _, members in param_groups(model)]


def test_trainable_counts_per_freeze_spec(tiny):
    name, kwargs, _ = tiny
    m = make(name, kwargs)
    sizes = group_sizes(m)
    total = sum(sizes)
    freeze(m, upto=2)
    assert trainable(m) == total - sizes[0] - sizes[1]
    unfreeze(m)
    assert trainable(m) == total
    freeze(m)  # default: everything but the head
    assert trainable(m) == sizes[-1]
    unfreeze(m, groups=[-2])
    assert trainable(m) == sizes[-1] + sizes[-2]
    unfreeze(m)
    groups = param_groups(m)
    freeze(m, groups=[groups[1][0], 3])
    assert trainable(m) == total - sizes[1] - sizes[3]
    unfreeze(m)
    assert freeze(m, upto=0) == [] and trainable(m) == total
    freeze(m, upto=-1)
    assert trainable(m) == sizes[-1]


def test_names_glob_matches_parameters_and_modules():
    m = make("tv:resnet18", {})
    frozen = freeze(m, names=["layer1", "conv1.*"])
    assert frozen[0] == "conv1.weight" and all(n.startswith(("layer1.", "conv1.")) for n in frozen)
    assert len(frozen) == 1 + sum(1 for n, _ in m.named_parameters() if n.startswith("layer1."))


def test_vgg16_seed_example_one_call_each():
    """torchvision VGG16 (IMAGENET1K_V1 layout), freeze features[:10], classifier[6] for 10 classes."""
    vgg = make("tv:vgg16.IMAGENET1K_V1", {}, num_classes=10)
    assert tuple(vgg.get_classifier().weight.shape) == (10, 4096)
    assert vgg.get_submodule("classifier.6") is vgg.get_classifier()
    frozen = freeze(vgg, names=["features.[0-9].*"])
    expected = [f"features.{i}.{w}" for i in (0, 2, 5, 7) for w in ("weight", "bias")]
    assert frozen == expected
    unfreeze(vgg)
    assert freeze(vgg, upto=4) == expected  # the same prefix by group index
    assert vgg.pretrained_cfg["tag"] == "IMAGENET1K_V1" and vgg.pretrained_cfg["crop_pct"] == 0.875


@pytest.mark.parametrize("name,kwargs,size", WITH_BN, ids=[t[0] for t in WITH_BN])
def test_frozen_bn_statistics_unchanged_after_training_step(name, kwargs, size):
    m = make(name, kwargs)
    freeze(m, upto=-1)  # backbone frozen, BN policy "frozen"
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    loss = torch.nn.functional.cross_entropy(m(batch(size, n=4)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    after = m.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    head = set(param_groups(m)[-1][1])
    assert changed and set(changed) <= head  # bit for bit: running stats and counters untouched
    assert m.training  # the model itself is still in train mode


@pytest.mark.parametrize("name,kwargs,size", WITH_BN[:1], ids=[WITH_BN[0][0]])
def test_bn_train_policy_updates_statistics(name, kwargs, size):
    m = make(name, kwargs)
    freeze(m, upto=-1, bn="train")
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items() if "running_mean" in k}
    m(batch(size, n=4))
    assert any(not torch.equal(v, m.state_dict()[k]) for k, v in before.items())


def test_frozen_bn_uses_running_stats_in_train_mode():
    m = make("test_resnet", {})
    freeze(m, upto=-1)
    x = batch(32, n=3)
    m.eval()
    ref = m(x)
    m.train()
    assert torch.allclose(m(x), ref, atol=1e-6)  # same as eval: BN uses running statistics
    unfreeze(m)
    m.train()
    assert not torch.allclose(m(x), ref, atol=1e-4)  # unfreeze gives BN back to batch statistics


def test_partial_freeze_keeps_trainable_bn_in_train_mode():
    m = make("test_efficientnet", {})
    freeze(m, upto=1)
    m.train()
    m(batch(32))
    stem_bn = m.bn1
    last_bn = m.bn2
    assert not stem_bn.training and last_bn.training
    summary = trainable_summary(m)
    assert "frozen (eval)" in summary.splitlines()[2] and summary.splitlines()[-4].endswith(
        "  train"
    )


def test_frozen_state_round_trip():
    m = make("test_resnet", {})
    freeze(m, groups=["stem", 2], bn="frozen")
    state = frozen_state(m)
    other = make("test_resnet", {})
    set_frozen_state(other, state)
    assert [p.requires_grad for p in other.parameters()] == [
        p.requires_grad for p in m.parameters()
    ]
    assert state["bn"] == "frozen" and all(n in dict(m.named_parameters()) for n in state["frozen"])
    assert not other.get_submodule(state["frozen"][-1].rsplit(".", 1)[0]).weight.requires_grad
    with pytest.raises(ConfigError, match="does not have"):
        set_frozen_state(other, ["nope.weight"])


def test_freeze_state_survives_deepcopy_and_pickle(tmp_path):
    m = make("test_resnet", {})
    freeze(m, upto=-1)
    path = tmp_path / "m.pt"
    torch.save(m, path)
    loaded = torch.load(path, weights_only=False)
    loaded.train()
    x = batch(32)
    loaded.eval()
    ref = loaded(x)
    loaded.train()
    assert torch.allclose(loaded(x), ref, atol=1e-6)


def test_selector_matching_nothing_lists_groups():
    m = make("test_resnet", {})
    with pytest.raises(
        UnknownNameError,
        match=r"names pattern 'featurs\.\*' matches no parameter.*layer1.*Groups: 0:stem",
    ):
        freeze(m, names=["featurs.*"])
    with pytest.raises(UnknownNameError, match=r"unknown parameter group 'layr1'.*Groups in order"):
        freeze(m, groups=["layr1"])
    with pytest.raises(ConfigError, match=r"upto=99 is out of range: this model has 6 groups"):
        freeze(m, upto=99)
    with pytest.raises(ConfigError, match="bn='eval' is not a BatchNorm policy"):
        freeze(m, bn="eval")
    assert all(p.requires_grad for p in m.parameters())


def test_summary_table_counts():
    m = make("tv:resnet18", {})
    freeze(m, upto=-1)
    lines = trainable_summary(m).splitlines()
    assert lines[0].split() == ["#", "group", "params", "trainable", "BN"]
    head = next(line for line in lines if " head " in line)
    assert head.split()[2] == head.split()[3] == f"{512 * 5 + 5:,}"
    assert lines[-1].split()[:3] == [
        "total",
        f"{sum(p.numel() for p in m.parameters()):,}",
        f"{512 * 5 + 5:,}",
    ]


def test_bn_follows_requires_grad_flipped_elsewhere():
    """A trainer that makes frozen parameters trainable itself gets batch statistics back."""
    m = make("test_resnet", {})
    freeze(m, upto=-1)
    for p in m.parameters():
        p.requires_grad_(True)
    m.train()
    before = m.layer1[0].bn1.running_mean.clone()
    m(batch(32, n=4))
    assert not torch.equal(before, m.layer1[0].bn1.running_mean)
    assert "frozen (eval)" not in trainable_summary(m)
