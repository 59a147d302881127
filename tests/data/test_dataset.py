"""ImageDataset: tensors and labels, bad files never crash a DataLoader, image cache, class balance."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import graft.data.dataset as dataset_module
from graft.data import (
    ImageDataset,
    build_transforms,
    cache_size_for,
    class_counts,
    class_weights,
    collate_skip,
    make_balanced_sampler,
    resolve_data_config,
    scan_dataset,
)
from graft.errors import ConfigError

CFG = {
    "input_size": (3, 24, 24),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "mean": (0.5,) * 3,
    "std": (0.25,) * 3,
}


def test_items_are_tensors_and_labels(tiny_folder_session: Path) -> None:
    splits = scan_dataset(tiny_folder_session, verify=False)
    ds = ImageDataset(splits.train, build_transforms(CFG, train=True, augment="light"))
    x, y = ds[len(ds) - 1]
    assert x.shape == (3, 24, 24) and y == 2 and len(ds) == 36
    gray = ImageDataset(
        splits.train,
        build_transforms(resolve_data_config(CFG, in_chans=1), train=False),
        in_chans=1,
    )
    assert gray[0][0].shape == (1, 24, 24)
    assert ImageDataset(splits.train, None, in_chans=1)[0][0].mode == "L"


def test_bad_file_at_load_time_is_dropped_and_recorded(
    tmp_path: Path, tiny_folder_session: Path, caplog
) -> None:
    root = shutil.copytree(tiny_folder_session, tmp_path / "d")
    splits = scan_dataset(root)
    broken = splits.train[3][0]
    Path(broken).write_bytes(b"<html>gone</html>")  # changed after the scan
    ds = ImageDataset(splits.train, build_transforms(CFG, train=False))
    assert ds[3] is None and ds.failed == {broken: "not an image"}
    with caplog.at_level(logging.WARNING, logger="graft"):
        batches = list(DataLoader(ds, batch_size=8, collate_fn=collate_skip))
    assert sum(len(b[1]) for b in batches) == len(ds) - 1
    assert batches[0][0].shape == (7, 3, 24, 24)
    assert collate_skip([None, None]) is None


def test_cache_gives_the_same_tensors(tiny_folder_session: Path) -> None:
    samples = scan_dataset(tiny_folder_session, verify=False).train
    t = build_transforms(CFG, train=False)
    plain, cached = ImageDataset(samples, t), ImageDataset(samples, t, cache_images=True)
    assert cached.cached and not plain.cached
    for i in (0, 5, 17):
        torch.testing.assert_close(plain[i][0], cached[i][0])


def test_cache_resizes_and_refuses_when_memory_is_short(
    tiny_folder_session: Path, monkeypatch, caplog
) -> None:
    samples = scan_dataset(tiny_folder_session, verify=False).train
    small = ImageDataset(samples, None, cache_images=True, cache_size=16)
    assert small[0][0].size == (16, 16)
    monkeypatch.setattr(dataset_module, "available_memory", lambda: 1000)
    with caplog.at_level(logging.WARNING, logger="graft"):
        assert not ImageDataset(samples, None, cache_images=True).cached
    assert "not caching images" in caplog.text


def test_cache_size_never_makes_the_transform_upsample() -> None:
    assert cache_size_for(resolve_data_config(CFG, image_size=(40, 56))) == 56
    assert cache_size_for({"input_size": (3, 224, 224), "crop_pct": 0.875}) == 256


def test_in_chans_must_be_1_or_3() -> None:
    with pytest.raises(ConfigError, match="in_chans"):
        ImageDataset([], None, in_chans=4)


def test_class_counts_and_weights() -> None:
    labels = [0] * 6 + [1] * 2 + [3] * 4
    assert class_counts(labels) == [6, 2, 0, 4]
    assert class_counts(labels, num_classes=5) == [6, 2, 0, 4, 0]
    torch.testing.assert_close(class_weights(labels), torch.tensor([12 / 18, 12 / 6, 0.0, 12 / 12]))


def test_balanced_sampler_draws_classes_equally() -> None:
    labels = [0] * 900 + [1] * 100
    drawn = Counter(labels[i] for i in make_balanced_sampler(labels, num_samples=20_000, seed=0))
    assert (
        abs(drawn[0] - drawn[1]) < 800
    )  # 10,000 each expected; unbalanced would give 18,000 / 2,000
    assert list(make_balanced_sampler(labels, seed=1)) == list(
        make_balanced_sampler(labels, seed=1)
    )


def test_datasets_over_the_same_files_share_one_cache(tiny_folder_session: Path) -> None:
    samples = scan_dataset(tiny_folder_session, verify=False).train
    augmented = ImageDataset(
        samples, build_transforms(CFG, train=True, augment="light"), cache_images=True
    )
    plain = ImageDataset(samples, build_transforms(CFG, train=False), cache_images=True)
    assert augmented._cache is plain._cache
    assert ImageDataset(samples[:5], None, cache_images=True)._cache is not plain._cache
