"""Hybrid groups (per branch), rebuilding from graft_spec, weights files, bundles and ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hybrid_helpers import CNN_SIZE, tiny_hybrid
from timm.models import group_parameters

from graft.hybrid import HybridModel
from graft.hybrid.groups import prefix_matcher


def _trained_a_little(model: HybridModel) -> HybridModel:
    """Move every parameter and BatchNorm statistic away from its initial value."""
    model.train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model(torch.rand(4, 3, CNN_SIZE, CNN_SIZE))  # updates BatchNorm running stats
    return model.eval()


def test_each_branch_keeps_its_own_groups_under_its_prefix() -> None:
    model = tiny_hybrid("gated")
    hybrid = group_parameters(model, model.group_matcher())
    order = [names for _, names in sorted(hybrid.items())]
    for key in ("cnn", "vit"):
        branch = model.branches[key]
        own = group_parameters(branch, branch.group_matcher())
        expected = [[f"branches.{key}.{n}" for n in names] for _, names in sorted(own.items())]
        got = [names for names in order if names[0].startswith(f"branches.{key}.")]
        assert got == expected
    prefixes = [names[0].split(".")[0] + "." + names[0].split(".")[1] for names in order]
    assert prefixes[-2:] == ["fusion.proj", "head.weight"]
    first_vit = next(i for i, p in enumerate(prefixes) if p == "branches.vit")
    assert all(p == "branches.cnn" for p in prefixes[:first_vit])


def test_prefixing_keeps_regex_meaning() -> None:
    matcher = prefix_matcher(
        "cnn", {"stem": r"^conv1|bn1|^maxpool", "blocks": r"^layer(\d+)\.(\d+)"}
    )
    import re

    stem = re.compile(matcher["cnn.stem"])
    assert stem.match("branches.cnn.bn1.weight") and stem.match("branches.cnn.maxpool.x")
    assert not stem.match("branches.cnn.layer1.0.bn1.weight") and not stem.match(
        "branches.vit.conv1.weight"
    )
    blocks = re.compile(matcher["cnn.blocks"][0][0])
    assert blocks.match("branches.cnn.layer3.1.conv.weight").groups() == ("3", "1")


def test_param_groups_are_branch_prefixed_then_fusion_then_head() -> None:
    from graft.models.groups import param_groups

    names = [n for n, _ in param_groups(tiny_hybrid("attention"))]
    assert names[-2:] == ["fusion", "head"]
    assert any(n.startswith("branches.cnn.blocks") for n in names)
    assert any(n.startswith("branches.vit.blocks") for n in names)
    cnn_last = max(i for i, n in enumerate(names) if n.startswith("branches.cnn"))
    vit_first = min(i for i, n in enumerate(names) if n.startswith("branches.vit"))
    assert cnn_last < vit_first


def test_freeze_one_branch_by_name() -> None:
    from graft.models import freeze

    model = tiny_hybrid("concat").train()
    freeze(model, names=["branches.vit.*"])
    for name, p in model.named_parameters():
        assert p.requires_grad == (not name.startswith("branches.vit.")), name
    model.train()
    assert all(
        not m.training
        for n, m in model.named_modules()
        if n.startswith("branches.vit.") and isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    )
    assert model.branches["cnn"].bn1.training


@pytest.mark.parametrize("fusion", ["concat", "attention"])
def test_rebuild_from_graft_spec_gives_identical_predictions(fusion: str) -> None:
    from graft.models.factory import create_model

    model = _trained_a_little(tiny_hybrid(fusion, proj_dim=16))
    rebuilt = create_model(**model.graft_spec, pretrained=False).eval()
    assert isinstance(rebuilt, HybridModel) and rebuilt.graft_spec == model.graft_spec
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(3, 3, CNN_SIZE, CNN_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_create_model_without_num_classes_gives_a_feature_extractor() -> None:
    from graft.models import create_model

    model = create_model("test_efficientnet+test_vit", pretrained=False, fusion="gated", proj_dim=8,
                         branch_kwargs={"test_vit": {"img_size": 32}})  # fmt: skip
    assert isinstance(model, HybridModel) and model.num_classes == 0
    with torch.no_grad():
        assert model(torch.rand(1, 3, 160, 160)).shape == (1, 8)


def test_weights_file_of_a_whole_hybrid(tmp_path: Path) -> None:
    from safetensors.torch import save_model

    model = _trained_a_little(tiny_hybrid("gated", proj_dim=16))
    save_model(model, str(tmp_path / "hybrid.safetensors"))
    loaded = tiny_hybrid("gated", proj_dim=16, weights=tmp_path / "hybrid.safetensors").eval()
    x = torch.rand(2, 3, CNN_SIZE, CNN_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    other_head = tiny_hybrid(
        "gated", proj_dim=16, num_classes=5, weights=tmp_path / "hybrid.safetensors"
    )
    torch.testing.assert_close(other_head.fusion.gate.weight, model.fusion.gate.weight)


def test_bundle_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    from graft.bundle import load_bundle, save_bundle

    model = _trained_a_little(tiny_hybrid("attention", proj_dim=16))
    cfg = model.pretrained_cfg
    path = save_bundle(tmp_path / "bundle", model, ["a", "b", "c"], cfg)
    bundle = load_bundle(path)
    assert isinstance(bundle.model, HybridModel)
    assert bundle.data_config["mean"] == [0.0, 0.0, 0.0] and bundle.data_config["input_size"] == [
        3,
        CNN_SIZE,
        CNN_SIZE,
    ]
    x = torch.rand(3, 3, CNN_SIZE, CNN_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(bundle.logits(x), model(x), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("fusion", ["gated", "attention"])
def test_onnx_export_matches_pytorch(tmp_path: Path, fusion: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _trained_a_little(tiny_hybrid(fusion, proj_dim=16))
    x = torch.rand(2, 3, CNN_SIZE, CNN_SIZE)
    path = tmp_path / "hybrid.onnx"
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
    )  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = torch.rand(3, 3, CNN_SIZE, CNN_SIZE)  # another batch size than at export
    (onnx_out,) = session.run(None, {"image": batch.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(onnx_out), model(batch), rtol=1e-4, atol=1e-4)
