"""Feature taps, the teacher's preprocessing, frozen state and output cache."""

from __future__ import annotations

import pytest
import timm
import torch

from graft.distill.taps import FEATURES, FeatureTaps, layer_names, parse_pairs
from graft.distill.teacher import Teacher, TeacherInput, input_keys
from graft.errors import ConfigError, UnknownNameError

CFG_HALF = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 32, 32)}
CFG_IMAGENET = {
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "input_size": (3, 48, 48),
}


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, num_classes=3)


def test_parse_pairs() -> None:
    assert parse_pairs("auto") == [(FEATURES, FEATURES)]
    assert parse_pairs("none") == [] and parse_pairs(None) == []
    assert parse_pairs("a:b, c:d") == [("a", "b"), ("c", "d")]
    assert parse_pairs([("a", "b"), "c:d"]) == [("a", "b"), ("c", "d")]
    with pytest.raises(ConfigError, match="student_layer:teacher_layer"):
        parse_pairs("layer3")


def test_taps_collect_hooked_layers_and_features(resnet) -> None:
    taps = FeatureTaps(resnet, ["layer1", FEATURES, "layer3"])
    x = torch.randn(2, 3, 32, 32)
    logits, (l1, feats, l3) = taps(x)
    assert torch.allclose(logits, resnet(x), atol=1e-6)
    assert l1.shape[:2] == (2, 32) and feats.dim() == 4 and l3.dim() == 4
    taps.close()
    assert not resnet.layer1._forward_hooks


def test_taps_unknown_layer_suggests_names(resnet) -> None:
    with pytest.raises(UnknownNameError, match=r"student layer 'layer5'.*Did you mean: layer"):
        FeatureTaps(resnet, ["layer5"], role="student")
    assert "layer4" in layer_names(resnet) and layer_names(resnet)[0] == FEATURES


def test_teacher_input_renormalises_and_resizes() -> None:
    conv = TeacherInput(CFG_HALF, CFG_IMAGENET, size=(48, 48))
    raw = torch.rand(2, 3, 32, 32)
    student_x = (raw - 0.5) / 0.5
    out = conv(student_x)
    mean = torch.tensor(CFG_IMAGENET["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(CFG_IMAGENET["std"]).view(1, 3, 1, 1)
    expected = torch.nn.functional.interpolate(
        (raw - mean) / std, size=(48, 48), mode="bilinear", align_corners=False
    )
    assert out.shape == (2, 3, 48, 48)
    assert torch.allclose(out, expected, atol=1e-5)
    same = TeacherInput(CFG_HALF, CFG_HALF, size=(32, 32))
    assert same.identity and torch.equal(same(student_x), student_x)
    gray = TeacherInput({"mean": (0.5,), "std": (0.5,)}, CFG_HALF)
    assert gray(torch.zeros(1, 1, 8, 8)).shape == (1, 3, 8, 8)


def test_teacher_is_frozen_in_eval_and_unchanged(resnet) -> None:
    teacher_model = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    before = {k: v.clone() for k, v in teacher_model.state_dict().items()}
    teacher = Teacher(teacher_model, CFG_HALF, CFG_HALF, layers=[FEATURES])
    teacher_model.train()  # someone flips it: the teacher still runs in eval mode
    logits, (feats,) = teacher(torch.randn(4, 3, 32, 32))
    assert not teacher_model.training
    assert not logits.requires_grad and not logits.is_inference()  # usable in a loss
    s = torch.zeros(4, 3, requires_grad=True)
    torch.nn.functional.kl_div(
        s.log_softmax(-1), logits.softmax(-1), reduction="batchmean"
    ).backward()
    after = teacher_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
    assert all(not p.requires_grad for p in teacher_model.parameters())


def test_teacher_cache_equals_recomputation() -> None:
    torch.manual_seed(1)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    cached = Teacher(model, CFG_IMAGENET, CFG_HALF, layers=[FEATURES, "blocks.1"], cache=True)
    plain = Teacher(model, CFG_IMAGENET, CFG_HALF, layers=[FEATURES, "blocks.1"], cache=False)
    data = torch.randn(6, 3, 32, 32)
    for epoch in range(2):
        for idx in ([0, 1, 2], [3, 4, 5]) if epoch == 0 else ([4, 1, 3], [5, 0, 2]):
            x = data[idx]
            logits, feats = cached(x)
            ref_logits, ref_feats = plain(x)
            assert torch.equal(logits, ref_logits)
            assert all(torch.equal(a, b) for a, b in zip(feats, ref_feats, strict=True))
    assert cached.cache.misses == 6 and cached.cache.hits == 6 and len(cached.cache) == 6
    # explicit keys (sample indices) are honoured too
    logits, _ = cached(data[[0, 1]], keys=[10, 11])
    again, _ = cached(torch.zeros(2, 3, 32, 32), keys=[10, 11])
    assert torch.equal(logits, again)


def test_input_keys_distinguish_inputs() -> None:
    x = torch.randn(3, 3, 4, 4)
    keys = input_keys(x)
    assert len(set(keys)) == 3 and input_keys(x.clone()) == keys
    y = x.clone()
    y[1, 0, 0, 0] += 1e-3
    assert input_keys(y)[1] != keys[1] and input_keys(y)[0] == keys[0]
