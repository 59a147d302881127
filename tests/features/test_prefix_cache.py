"""Frozen-prefix cache: verified split, refusals, and cached training equal to uncached training."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import graft.models as gm
from graft.features.prefix_cache import cache_prefix_outputs, sequential_units, split_frozen_prefix


def _model(name: str = "test_resnet", upto: int = 3, bn: str = "frozen") -> torch.nn.Module:
    torch.manual_seed(0)
    model = gm.create_model(name, num_classes=3, pretrained=False)
    gm.freeze(model, upto=upto, bn=bn)
    return model


def test_split_cuts_after_the_frozen_groups() -> None:
    model = _model(upto=3)  # stem, layer1, layer2 frozen
    split = split_frozen_prefix(model)
    assert split is not None
    assert split.names[0] == "conv1.0" and split.names[-1] == "layer2.0"
    assert split.suffix_names == ["layer3.0", "layer4.0"]
    assert not any(p.requires_grad for p in split.prefix.parameters())
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in split.suffix.parameters()} | {
        id(p) for p in model.get_classifier().parameters()
    } == trainable
    x = torch.randn(2, 3, 48, 48)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(split.suffix(split.prefix(x)), model(x))


def test_efficientnet_blocks_are_expanded() -> None:
    names = [n for n, _ in sequential_units(_model("test_efficientnet"))]
    assert names[:3] == ["conv_stem", "bn1", "blocks.0.0"]
    split = split_frozen_prefix(_model("test_efficientnet", upto=3))
    assert split is not None and split.names[-1] == "blocks.1.0"


def test_vit_is_refused_with_a_reason(caplog) -> None:
    with caplog.at_level("INFO", logger="graft.features"):
        assert split_frozen_prefix(_model("test_vit", upto=3)) is None
    assert "not a plain sequence" in caplog.text


def test_batch_statistics_in_the_prefix_are_refused(caplog) -> None:
    with caplog.at_level("INFO", logger="graft.features"):
        assert split_frozen_prefix(_model(bn="train")) is None
    assert "uses batch statistics" in caplog.text


def test_nothing_frozen_is_refused() -> None:
    torch.manual_seed(0)
    assert (
        split_frozen_prefix(gm.create_model("test_resnet", num_classes=3, pretrained=False)) is None
    )


def _data(n: int = 12) -> TensorDataset:
    gen = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=gen), torch.arange(n) % 3)


def test_disk_cache_equals_memory_cache(tmp_path: Path) -> None:
    split = split_frozen_prefix(_model())
    loader = DataLoader(_data(), batch_size=5)
    memory = cache_prefix_outputs(split.prefix, loader)
    disk = cache_prefix_outputs(split.prefix, loader, out=tmp_path / "prefix.npy")
    assert (tmp_path / "prefix.npy").exists() and len(disk) == len(memory) == 12
    for i in (0, 7, 11):
        torch.testing.assert_close(disk[i][0], memory[i][0])
        assert int(disk[i][1]) == int(memory[i][1])
    assert memory[0][0].shape == (48, 4, 4)


def test_cached_training_gives_the_same_weights(tmp_path: Path) -> None:
    cached_model = _model(upto=3)
    plain_model = copy.deepcopy(cached_model)
    gm.apply_bn_policy(plain_model, "frozen")  # deepcopy keeps hooks; re-apply to be explicit
    data = _data()
    split = split_frozen_prefix(cached_model)
    cache = cache_prefix_outputs(split.prefix, DataLoader(data, batch_size=4))

    def train(forward, params, loader, steps: int = 6) -> None:
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        done = 0
        while done < steps:
            for x, y in loader:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(forward(x), y).backward()
                opt.step()
                done += 1

    plain_model.train()
    cached_model.train()
    train(
        plain_model,
        [p for p in plain_model.parameters() if p.requires_grad],
        DataLoader(data, batch_size=4),
    )
    train(
        split.suffix,
        [p for p in cached_model.parameters() if p.requires_grad],
        DataLoader(cache, batch_size=4),
    )
    before = dict(_model(upto=3).named_parameters())
    changed = 0
    for (name, a), (_, b) in zip(
        plain_model.named_parameters(), cached_model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
        changed += not torch.equal(a, before[name])
    assert changed > 0  # training did move the trainable weights
    for (
        name,
        buf,
    ) in plain_model.named_buffers():  # running stats of trainable BN moved the same way
        torch.testing.assert_close(
            buf, dict(cached_model.named_buffers())[name], atol=1e-5, rtol=1e-4
        )


def test_augmented_views_are_cached_per_epoch() -> None:
    split = split_frozen_prefix(_model())
    data = _data(6)

    class Noisy(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.calls = 0

        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, i):
            self.calls += 1
            x, y = data[i]
            return x + 0.1 * self.calls, y  # different "augmentation" every pass

    ds = cache_prefix_outputs(split.prefix, DataLoader(Noisy(), batch_size=3), views=2)
    first = ds[0][0].clone()
    ds.set_epoch(1)
    assert not torch.allclose(ds[0][0], first)
    ds.set_epoch(2)
    torch.testing.assert_close(ds[0][0], first)
    assert np.isclose(ds.nbytes, 2 * 6 * 48 * 4 * 4 * 4)


def test_build_prefix_cache_on_an_image_dataset(folder: Path) -> None:
    from graft.data import ImageDataset, build_transforms, resolve_data_config, scan_dataset
    from graft.features.prefix_cache import build_prefix_cache

    model = _model()
    samples = scan_dataset(folder, verify=False).train
    (folder / "red" / "bad.png").write_bytes(b"junk")
    samples = [*samples[:5], (str(folder / "red" / "bad.png"), 2), *samples[5:]]
    t = build_transforms(resolve_data_config(model.pretrained_cfg, image_size=32), train=False)
    split, cached = build_prefix_cache(model, ImageDataset(samples, t), batch_size=4)
    assert len(cached) == 12  # the unreadable image is left out, labels stay aligned
    assert cached.labels.tolist() == [y for p, y in samples if not p.endswith("bad.png")]
    x, _ = ImageDataset(samples[6:7], t)[0]
    with torch.no_grad():
        torch.testing.assert_close(cached[5][0], split.prefix(x[None])[0])
    assert build_prefix_cache(_model("test_vit"), ImageDataset(samples, t)) is None
