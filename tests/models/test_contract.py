"""The model contract, the same checks for every tiny model (timm test_* and torchvision resnet18)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TINY, WITH_BN, batch, make
from safetensors.torch import save_file

from graft.models import create_model, param_groups, replace_head
from graft.models.heads import HEAD_STD, MLPHead


def test_forward_shapes(tiny):
    name, kwargs, size = tiny
    m = make(name, kwargs).eval()
    x = batch(size)
    feats = m.forward_features(x)
    assert feats.shape[0] == 2 and feats.ndim in (3, 4)
    assert m.forward_head(feats, pre_logits=True).shape == (2, m.num_features)
    assert m.forward_head(feats).shape == (2, 5)
    assert torch.allclose(m(x), m.forward_head(feats), atol=1e-6)
    assert m.num_classes == 5


def test_contract_attributes(tiny):
    name, kwargs, _ = tiny
    m = make(name, kwargs)
    cfg = m.pretrained_cfg
    assert cfg["input_size"][0] == 3 and len(cfg["mean"]) == 3 and len(cfg["std"]) == 3
    assert cfg["interpolation"] in {"bilinear", "bicubic", "nearest"} and 0 < cfg["crop_pct"] <= 1
    assert cfg["weights"] is None and "label_names" not in cfg
    assert m.graft_spec == {
        "name": name,
        "num_classes": 5,
        "in_chans": 3,
        "head": {"type": "linear"},
        **kwargs,
    }
    assert isinstance(m.group_matcher(), dict)


def test_new_head_has_small_init(tiny):
    name, kwargs, _ = tiny
    w = make(name, kwargs, num_classes=10).get_classifier().weight
    assert w.shape[0] == 10
    assert 0.5 * HEAD_STD < w.std().item() < 2 * HEAD_STD
    assert torch.count_nonzero(make(name, kwargs).get_classifier().bias) == 0


def test_head_swap_keeps_backbone(tiny):
    name, kwargs, size = tiny
    m = make(name, kwargs).eval()
    x = batch(size)
    before = m.forward_head(m.forward_features(x), pre_logits=True)
    replace_head(m, 7)
    assert m(x).shape == (2, 7) and m.num_classes == 7 and m.graft_spec["num_classes"] == 7
    assert torch.equal(before, m.forward_head(m.forward_features(x), pre_logits=True))


def test_mlp_head_honours_pre_logits(tiny):
    name, kwargs, size = tiny
    m = make(name, kwargs, head={"type": "mlp", "hidden": 16, "dropout": 0.1}).eval()
    head = m.get_classifier()
    assert isinstance(head, MLPHead) and head.fc1.out_features == 16 and head.drop.p == 0.1
    x = batch(size)
    pre = m.forward_head(m.forward_features(x), pre_logits=True)
    assert pre.shape == (2, m.num_features)
    assert torch.allclose(head(pre), m(x), atol=1e-6)
    replace_head(m, 4)  # keeps the MLP type
    assert isinstance(m.get_classifier(), MLPHead) and m(x).shape == (2, 4)
    group, members = param_groups(m)[-1]
    assert group == "head" and [n.split(".", n.count(".") - 1)[-1] for n in members] == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
    ]


def test_num_classes_zero_is_a_feature_extractor(tiny):
    name, kwargs, size = tiny
    m = make(name, kwargs, num_classes=0).eval()
    assert m(batch(size)).shape == (2, m.num_features)
    assert param_groups(m)[-1][0] != "head"


def test_spec_rebuilds_same_architecture(tiny):
    name, kwargs, _ = tiny
    m = make(name, kwargs, in_chans=1, head="mlp")
    rebuilt = create_model(**m.graft_spec, pretrained=False)
    a, b = m.state_dict(), rebuilt.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)


def test_state_dict_round_trip(tiny, tmp_path):
    name, kwargs, size = tiny
    m = make(name, kwargs).eval()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    loaded = create_model(name, num_classes=5, weights=path, **kwargs).eval()
    x = batch(size)
    assert torch.equal(m(x), loaded(x))
    assert str(path) in loaded.pretrained_cfg["weights"]
    torch.save(m.state_dict(), tmp_path / "w.pth")
    assert torch.equal(
        m(x), create_model(name, num_classes=5, weights=tmp_path / "w.pth", **kwargs).eval()(x)
    )


def test_groups_cover_every_parameter_once(tiny):
    name, kwargs, _ = tiny
    m = make(name, kwargs)
    groups = param_groups(m)
    flat = [n for _, members in groups for n in members]
    assert sorted(flat) == sorted(n for n, _ in m.named_parameters())
    assert len(flat) == len(set(flat))
    classifier = {id(p) for p in m.get_classifier().parameters()}
    params = dict(m.named_parameters())
    assert groups[-1][0] == "head" and {id(params[n]) for n in groups[-1][1]} == classifier
    assert groups[0][0] == "stem" or groups[0][1][0].startswith(("features.0", "conv1"))
    assert len({g for g, _ in groups}) == len(groups) >= 4


@pytest.mark.parametrize(
    "name,kwargs,size", [t for t in TINY if t[0] in ("test_resnet", "tv:resnet18")]
)
def test_in_chans_adapts_pretrained_first_conv(name, kwargs, size, tmp_path):
    src = make(name, kwargs)
    path = tmp_path / "w.pth"
    torch.save(src.state_dict(), path)
    key = src.pretrained_cfg["first_conv"] + ".weight"
    w3 = src.state_dict()[key]
    gray = create_model(name, num_classes=5, in_chans=1, weights=path, **kwargs)
    assert torch.allclose(gray.state_dict()[key], w3.sum(dim=1, keepdim=True))
    five = create_model(name, num_classes=5, in_chans=5, weights=path, **kwargs)
    w5 = five.state_dict()[key]
    assert (
        w5.shape[1] == 5
        and torch.allclose(w5[:, :3], w3 * 3 / 5)
        and torch.allclose(w5[:, 3:], w3[:, :2] * 3 / 5)
    )
    assert gray(batch(size, chans=1)).shape == (2, 5) and five(batch(size, chans=5)).shape == (2, 5)
    assert gray.pretrained_cfg["input_size"][0] == 1 and len(gray.pretrained_cfg["mean"]) == 1
    assert len(five.pretrained_cfg["std"]) == 5


def test_in_chans_adaptation_is_logged(tmp_path, caplog):
    src = make("test_resnet", {})
    torch.save(src.state_dict(), tmp_path / "w.pth")
    with caplog.at_level("INFO", logger="graft"):
        create_model("test_resnet", num_classes=5, in_chans=1, weights=tmp_path / "w.pth")
    assert "from 3 to 1 input channels" in caplog.text


def test_different_class_count_drops_exactly_the_classifier(tmp_path, caplog):
    src = make("test_efficientnet", {}, num_classes=1000)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    with caplog.at_level("INFO", logger="graft"):
        m = create_model("test_efficientnet", num_classes=4, weights=tmp_path / "w.pth")
    assert "dropped the pretrained classifier 'classifier' (1000 classes)" in caplog.text
    sd, ref = m.state_dict(), src.state_dict()
    differing = [k for k in sd if sd[k].shape != ref[k].shape or not torch.equal(sd[k], ref[k])]
    assert differing == ["classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("name,kwargs,size", WITH_BN[:1], ids=["test_efficientnet"])
def test_same_class_count_keeps_pretrained_head(name, kwargs, size, tmp_path):
    src = make(name, kwargs)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    m = create_model(name, num_classes=5, weights=tmp_path / "w.pth", **kwargs)
    assert torch.equal(m.get_classifier().weight, src.get_classifier().weight)


def test_torchvision_reset_classifier_keeps_spec_in_sync():
    m = make("tv:resnet18", {}, head="mlp")
    m.reset_classifier(2)
    assert isinstance(m.get_classifier(), MLPHead) and m.get_classifier().fc2.out_features == 2
    assert m.graft_spec["num_classes"] == 2 and m.graft_spec["head"]["type"] == "mlp"
    m.reset_classifier(3, "avg")  # timm's signature
    assert m.num_classes == 3
