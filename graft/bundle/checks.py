"""Checks of every field graft reads from a ``model.json`` or ``manifest.json`` before using it.

A bundle or feature store may come from someone else: its JSON is data, never trusted. Each check
raises an error naming the file and the field, what was found and what is valid; nothing is
allocated from a field before it passed (a crafted ``input_size`` of 100000 px would otherwise
exhaust memory in the first batch).

Example:
    >>> check_data_config({"input_size": [3, 100000, 100000], "mean": [0.5] * 3, "std": [0.5] * 3},
    ...                   "model.json")
    Traceback (most recent call last):
    ...
    graft.errors.UnsafeFileError: model.json: data_config.input_size ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from graft.errors import ConfigError, DataError, UnsafeFileError

MAX_IMAGE_SIDE = 4096  # pixels a side; graft's own models use at most a few hundred
MAX_CHANNELS = 16
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming", "random")
MAX_CLASSES = 1_000_000


def _bad(where: str, field: str, value: Any, valid: str, error: type = UnsafeFileError) -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise error(
        f"{where}: {field} is {shown}; {valid}. The file was edited or damaged: re-create it with "
        "graft (or fix that field) before using it."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_image_side(value: Any, name: str = "image_size") -> None:
    """An option giving an image side in pixels: an integer in [1, MAX_IMAGE_SIDE].

    Example:
        >>> check_image_side(224)
    """
    if not _is_int(value) or not 1 <= value <= MAX_IMAGE_SIDE:
        raise ConfigError(
            f"{name} must be a whole number of pixels between 1 and {MAX_IMAGE_SIDE}, got "
            f"{value!r}; typical values are 32 to 512 (the model's own size when unset)."
        )


def check_classes(
    classes: Any, where: str, error: type = UnsafeFileError, allow_empty: bool = False
) -> list[str]:
    """``classes``: a non-empty (unless ``allow_empty``) list of distinct strings.

    Example:
        >>> check_classes(["cat", "dog"], "model.json")
        ['cat', 'dog']
    """
    if not isinstance(classes, list) or not (classes or allow_empty) or len(classes) > MAX_CLASSES:
        _bad(where, "classes", classes, "it must be a non-empty list of class names", error)
    if not all(isinstance(c, str) for c in classes):
        _bad(where, "classes", classes, "every class name must be a string", error)
    if len(set(classes)) != len(classes):
        twice = sorted({c for c in classes if classes.count(c) > 1})
        _bad(where, "classes", twice, "class names must be distinct (these repeat)", error)
    return classes


def check_input_size(value: Any, where: str, field: str = "data_config.input_size") -> None:
    """``[C, H, W]`` with 1 <= C <= 16 and 1 <= H, W <= MAX_IMAGE_SIDE.

    Example:
        >>> check_input_size([3, 224, 224], "model.json")
    """
    valid = (
        f"it must be [channels, height, width] with 1-{MAX_CHANNELS} channels and sides of 1 to "
        f"{MAX_IMAGE_SIDE} px"
    )
    if not isinstance(value, list) or len(value) != 3 or not all(_is_int(v) for v in value):
        _bad(where, field, value, valid)
    channels, *sides = value
    if not 1 <= channels <= MAX_CHANNELS or not all(1 <= s <= MAX_IMAGE_SIDE for s in sides):
        _bad(where, field, value, valid)


def check_data_config(cfg: Any, where: str) -> None:
    """A bundle's preprocessing: input size, mean, std (positive), crop fraction, interpolation.

    Example:
        >>> check_data_config({"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.2] * 3}, "m")
    """
    if not isinstance(cfg, Mapping):
        _bad(where, "data_config", cfg, "it must be a mapping (input_size, mean, std, ...)")
    for key in ("input_size", "mean", "std"):
        if key not in cfg:
            _bad(where, f"data_config.{key}", None, "it is required")
    check_input_size(cfg["input_size"], where)
    for key in ("mean", "std"):
        values = cfg[key]
        ok = isinstance(values, list) and 1 <= len(values) <= MAX_CHANNELS
        if not ok or not all(_is_number(v) for v in values):
            _bad(where, f"data_config.{key}", values, "it must list one number per channel")
    if not all(v > 0 for v in cfg["std"]):
        _bad(where, "data_config.std", cfg["std"], "every std must be positive (it divides)")
    crop = cfg.get("crop_pct", 1.0)
    if not _is_number(crop) or not 0 < crop <= 2:
        _bad(
            where, "data_config.crop_pct", crop, "it must be a fraction in (0, 2], usually 0.875-1"
        )
    interp = cfg.get("interpolation", "bilinear")
    if interp not in INTERPOLATIONS:
        _bad(where, "data_config.interpolation", interp, f"valid: {', '.join(INTERPOLATIONS)}")


def check_spec(spec: Any, where: str) -> None:
    """A classifier's ``spec``: a mapping with a model ``name`` and an integer ``num_classes``.

    Example:
        >>> check_spec({"name": "test_efficientnet", "num_classes": 3}, "model.json")
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        _bad(where, "spec", spec, "it must be a mapping with the model's 'name'")
    n = spec.get("num_classes")
    if n is not None and (not _is_int(n) or not 0 <= n <= MAX_CLASSES):
        _bad(where, "spec.num_classes", n, "it must be a whole number of classes")


def check_meta(meta: Mapping[str, Any], where: str) -> None:
    """Every field of a bundle's ``model.json`` that graft uses before building the model.

    Example:
        >>> check_meta({"kind": "classifier", "classes": ["a"], "spec": {"name": "m",
        ...             "num_classes": 1}, "data_config": {"input_size": [3, 8, 8],
        ...             "mean": [0.5], "std": [0.5]}}, "model.json")
    """
    if not isinstance(meta.get("kind"), str):
        _bad(where, "kind", meta.get("kind"), "it must be a bundle kind name such as 'classifier'")
    classes = check_classes(meta.get("classes"), where)
    check_data_config(meta.get("data_config"), where)
    if meta["kind"] == "classifier":
        check_spec(meta.get("spec"), where)
        n = meta["spec"].get("num_classes")
        if n is not None and n != len(classes):
            _bad(where, "classes", f"{len(classes)} names",
                 f"the model's head (spec.num_classes) has {n} outputs, one name each")  # fmt: skip


def check_head(outputs: int | None, classes: list[str], where: str) -> None:
    """The built model's output count equals the number of class names.

    Example:
        >>> check_head(3, ["a", "b", "c"], "model.json")
    """
    if outputs is not None and outputs != len(classes):
        _bad(where, "classes", f"{len(classes)} names", f"the weights' head has {outputs} outputs")


def check_manifest_entries(meta: Mapping[str, Any], where: str) -> None:
    """A feature store's ``manifest.json``: classes, settings, and every entry's label/shard/row.

    Example:
        >>> check_manifest_entries({"classes": ["a"], "settings": {}, "entries": []}, "m.json")
    """
    classes = check_classes(meta.get("classes"), where, DataError, allow_empty=True)
    if not isinstance(meta.get("settings"), Mapping):
        _bad(where, "settings", meta.get("settings"), "it must be a mapping", DataError)
    entries = meta.get("entries")
    if not isinstance(entries, list):
        _bad(where, "entries", entries, "it must be a list", DataError)
    fields = {"file", "label", "split", "sha256", "size", "mtime_ns", "shard", "row"}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or set(entry) != fields:
            _bad(
                where, f"entries[{i}]", entry, f"each entry has exactly {sorted(fields)}", DataError
            )
        label, shard, row = entry["label"], entry["shard"], entry["row"]
        if not _is_int(label) or not -1 <= label < len(classes):
            _bad(where, f"entries[{i}].label", label,
                 f"it must index the {len(classes)} classes (or be -1: unlabelled)", DataError)  # fmt: skip
        if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard.startswith("."):
            _bad(where, f"entries[{i}].shard", shard, "it must be a shard file name", DataError)
        if not _is_int(row) or row < 0:
            _bad(where, f"entries[{i}].row", row, "it must be a row number >= 0", DataError)
        if not isinstance(entry["file"], str):
            _bad(where, f"entries[{i}].file", entry["file"], "it must be a path", DataError)
