"""list_models / available_models: names by pattern and weights found in the local caches."""

from __future__ import annotations

from graft.models import DEFAULT_BACKBONE, available_models, list_models


def test_list_models_patterns():
    assert list_models("tv:resnet1*") == ["tv:resnet101", "tv:resnet152", "tv:resnet18"]
    assert list_models("*efficientnet_lite0") == ["efficientnet_lite0", "tf_efficientnet_lite0"]
    assert (
        DEFAULT_BACKBONE in list_models()
        and "tv:vgg16" in list_models()
        and "test_vit" in list_models()
    )
    assert list_models("TV:VGG16") == ["tv:vgg16"]  # case-insensitive


def test_torch_hub_cache_files_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("resnet18-f37072fd.pth", "unrelated-file.pth"):
        (folder / name).write_bytes(b"")
    found = {e["name"]: e for e in available_models() if e["source"] == "torch hub cache"}
    assert set(found) == {"tv:resnet18.IMAGENET1K_V1", "resnet18.tv_in1k"}
    assert found["tv:resnet18.IMAGENET1K_V1"]["input_size"] == (3, 224, 224)
    assert found["resnet18.tv_in1k"]["path"] == str(folder / "resnet18-f37072fd.pth")
    assert "tv:resnet18.IMAGENET1K_V1" in list_models("tv:*", available=True)
