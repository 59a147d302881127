"""Data: scanning folders and CSVs, robust image decoding, datasets, transforms, stats, samples.

Example:
    >>> from graft.data import scan_dataset, build_transforms, resolve_data_config  # doctest: +SKIP
    >>> splits = scan_dataset("data/pets", val_split=0.2)  # doctest: +SKIP
"""

from __future__ import annotations

from graft.data.dataset import (
    ImageDataset,
    cache_size_for,
    class_counts,
    class_weights,
    collate_skip,
    make_balanced_sampler,
)
from graft.data.images import IMAGE_EXTENSIONS, ImageError, is_image_file, load_image
from graft.data.samples import sample_dataset
from graft.data.scan import Splits, scan_dataset, stratified_split
from graft.data.stats import DatasetStats, dataset_stats, normalization_stats
from graft.data.transforms import build_transforms, parse_normalization, resolve_data_config

__all__ = [
    "DatasetStats",
    "dataset_stats",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageError",
    "Splits",
    "build_transforms",
    "cache_size_for",
    "class_counts",
    "class_weights",
    "collate_skip",
    "is_image_file",
    "load_image",
    "make_balanced_sampler",
    "normalization_stats",
    "parse_normalization",
    "resolve_data_config",
    "sample_dataset",
    "scan_dataset",
    "stratified_split",
]
