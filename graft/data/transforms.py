"""Image transforms derived from the model's pretrained config: resize, crop, interpolation, normalize.

A *data config* is a dict like ``model.pretrained_cfg``: ``input_size`` (C, H, W), ``interpolation``,
``crop_pct``, ``crop_mode``, ``mean``, ``std``, plus ``normalization`` (how mean/std were chosen:
``pretrained``, ``dataset`` or ``explicit``). Nothing here hard-codes ImageNet constants.

Evaluation: resize the shorter side to ``size / crop_pct``, centre crop ``size``, scale to [0, 1],
normalize. Training presets (``augment``):

- ``none``: the evaluation transform.
- ``light``: random resized crop (scale 0.6-1) and horizontal flip.
- ``standard``: random resized crop (scale 0.25-1), horizontal flip, colour jitter (brightness,
  contrast, saturation 0.3; saturation off for grayscale).

``flip=False`` turns flipping off (digits, text, anything with a handedness).

Example:
    >>> cfg = resolve_data_config({"input_size": (3, 224, 224), "interpolation": "bicubic",
    ...                            "crop_pct": 0.875, "mean": (0.5,) * 3, "std": (0.5,) * 3}, image_size=64)
    >>> build_transforms(cfg, train=False)  # doctest: +ELLIPSIS
    Compose(...)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from graft.errors import ConfigError, raise_unknown

AUGMENT_PRESETS = ("none", "light", "standard")
NORMALIZATION_MODES = ("pretrained", "dataset")
_INTERPOLATION = {
    "bicubic": InterpolationMode.BICUBIC,
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST,
    "lanczos": InterpolationMode.LANCZOS,
    "box": InterpolationMode.BOX,
    "hamming": InterpolationMode.HAMMING,
}
_DEFAULTS = {"interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center"}

Normalization = str | tuple[Sequence[float], Sequence[float]]


def resolve_data_config(
    pretrained_cfg: Mapping[str, Any] | Any,
    image_size: int | Sequence[int] | None = None,
    normalization: Normalization = "pretrained",
    dataset_stats: Any = None,
    in_chans: int | None = None,
) -> dict[str, Any]:
    """Return the data config for a model: its pretrained config with size and normalization applied.

    ``pretrained_cfg`` is a model's ``pretrained_cfg`` dict (or a model that has one).
    ``normalization`` is ``"pretrained"`` (the weights' mean/std, the default), ``"dataset"`` (needs
    ``dataset_stats``: a :class:`graft.data.stats.DatasetStats`, a dict with ``mean``/``std`` or a
    ``(mean, std)`` pair) or an explicit ``(mean, std)`` pair. ``in_chans=1`` averages 3-channel
    statistics into one channel for grayscale models.

    Example:
        >>> cfg = resolve_data_config({"mean": (0.5,) * 3, "std": (0.5,) * 3}, image_size=32,
        ...                           normalization=((0.2,) * 3, (0.3,) * 3))
        >>> cfg["input_size"], cfg["mean"], cfg["normalization"]
        ((3, 32, 32), (0.2, 0.2, 0.2), 'explicit')
    """
    base = dict(getattr(pretrained_cfg, "pretrained_cfg", pretrained_cfg) or {})
    if "mean" not in base or "std" not in base:
        raise ConfigError(
            f"the pretrained config has no mean/std (keys: {sorted(base)}); pass normalization=(mean, std)."
        )
    cfg = {key: base.get(key, default) for key, default in _DEFAULTS.items()}
    channels = in_chans or int(base.get("input_size", (3,))[0])
    cfg["input_size"] = (channels, *_hw(image_size, base))
    mean, std, mode = _normalization(base, normalization, dataset_stats)
    cfg["mean"], cfg["std"] = _fit_channels(mean, channels), _fit_channels(std, channels)
    cfg["normalization"] = mode
    _check_interpolation(cfg["interpolation"])
    if not 0.0 < float(cfg["crop_pct"]) <= 1.0:
        raise ConfigError(f"crop_pct must be in (0, 1], got {cfg['crop_pct']}")
    return cfg


def parse_normalization(text: str) -> Normalization:
    """Parse a ``--normalization`` value: ``pretrained``, ``dataset`` or ``MEAN:STD``.

    ``MEAN`` and ``STD`` are comma-separated numbers in [0, 1] scale, one per channel or a single
    value for all channels: ``0.5,0.5,0.5:0.25,0.25,0.25`` or ``0.45:0.22``.

    Example:
        >>> parse_normalization("0.5:0.25")
        ((0.5,), (0.25,))
        >>> parse_normalization("dataset")
        'dataset'
    """
    value = text.strip()
    if value.lower() in NORMALIZATION_MODES:
        return value.lower()
    if ":" not in value:
        raise_unknown(
            "normalization",
            value,
            NORMALIZATION_MODES,
            hint="Or give MEAN:STD with comma-separated values, e.g. 0.5,0.5,0.5:0.25,0.25,0.25 or 0.45:0.22.",
        )
    mean_text, std_text = value.split(":", 1)
    mean, std = _floats(mean_text, text), _floats(std_text, text)
    _check_mean_std(mean, std)
    return mean, std


def build_transforms(
    data_cfg: Mapping[str, Any],
    train: bool,
    augment: str = "none",
    flip: bool = True,
    in_chans: int | None = None,
) -> T.Compose:
    """Build the train or eval transform (PIL image -> normalized float tensor ``C,H,W``).

    Example:
        >>> cfg = {"input_size": (1, 28, 28), "interpolation": "bilinear", "crop_pct": 1.0,
        ...        "mean": (0.5,), "std": (0.5,)}
        >>> t = build_transforms(cfg, train=True, augment="light", flip=False, in_chans=1)
        >>> t(Image.new("RGB", (40, 30))).shape
        torch.Size([1, 28, 28])
    """
    if augment not in AUGMENT_PRESETS:
        raise_unknown("augmentation preset", augment, AUGMENT_PRESETS)
    channels = in_chans or int(data_cfg.get("input_size", (3,))[0])
    if channels not in (1, 3):
        raise ConfigError(
            f"in_chans must be 1 (grayscale) or 3 (RGB) for image transforms, got {channels}"
        )
    height, width = (int(v) for v in data_cfg["input_size"][-2:])
    interp = _check_interpolation(data_cfg.get("interpolation", _DEFAULTS["interpolation"]))
    steps: list[Any] = [EnsureMode("L" if channels == 1 else "RGB")]
    if train and augment != "none":
        steps += _augmentations((height, width), interp, augment, flip, channels)
    else:
        steps += _eval_geometry((height, width), interp, data_cfg)
    mean = _fit_channels(data_cfg["mean"], channels)
    std = _fit_channels(data_cfg["std"], channels)
    steps += [T.PILToTensor(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    return T.Compose(steps)


class EnsureMode:
    """Convert a PIL image to ``mode`` (``"RGB"`` or ``"L"``) if it is not already."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.mode == self.mode else img.convert(self.mode)

    def __repr__(self) -> str:
        return f"EnsureMode({self.mode!r})"


def _eval_geometry(
    size: tuple[int, int], interp: InterpolationMode, cfg: Mapping[str, Any]
) -> list[Any]:
    crop_pct = float(cfg.get("crop_pct", _DEFAULTS["crop_pct"]))
    if cfg.get("crop_mode", "center") == "squash":
        scaled = tuple(math.floor(s / crop_pct) for s in size)
        return [T.Resize(scaled, interpolation=interp, antialias=True), T.CenterCrop(size)]
    if size[0] == size[1]:
        scaled_short: int | tuple[int, int] = math.floor(size[0] / crop_pct)
    else:
        scaled_short = tuple(math.floor(s / crop_pct) for s in size)
    return [T.Resize(scaled_short, interpolation=interp, antialias=True), T.CenterCrop(size)]


def _augmentations(size, interp, augment: str, flip: bool, channels: int) -> list[Any]:
    scale = (0.6, 1.0) if augment == "light" else (0.25, 1.0)
    steps: list[Any] = [
        T.RandomResizedCrop(size, scale=scale, interpolation=interp, antialias=True)
    ]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if augment == "standard":
        steps.append(
            T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3 if channels == 3 else 0.0)
        )
    return steps


def _hw(image_size: int | Sequence[int] | None, base: Mapping[str, Any]) -> tuple[int, int]:
    if image_size is None:
        size = base.get("input_size")
        if not size:
            raise ConfigError("the pretrained config has no input_size; pass image_size=...")
        return int(size[-2]), int(size[-1])
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    hw = tuple(int(v) for v in image_size)[-2:]
    if len(hw) != 2 or min(hw) < 1:
        raise ConfigError(
            f"image_size must be a positive int or (height, width), got {image_size!r}"
        )
    return hw  # type: ignore[return-value]


def _normalization(base: Mapping[str, Any], normalization: Normalization, dataset_stats: Any):
    if isinstance(normalization, str):
        normalization = parse_normalization(normalization)
    if normalization == "pretrained":
        return tuple(base["mean"]), tuple(base["std"]), "pretrained"
    if normalization == "dataset":
        mean, std = _stats_mean_std(dataset_stats)
        return mean, std, "dataset"
    try:
        mean, std = normalization
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"normalization must be 'pretrained', 'dataset' or (mean, std); got {normalization!r}"
        ) from e
    _check_mean_std(mean, std)
    return mean, std, "explicit"


def _stats_mean_std(stats: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if stats is None:
        raise ConfigError(
            "normalization='dataset' needs the dataset's statistics: compute them once with "
            "graft.dataset_stats(DATA) (or `graft stats DATA`) and pass dataset_stats=..."
        )
    if isinstance(stats, Mapping):
        mean, std = stats.get("mean"), stats.get("std")
    elif hasattr(stats, "mean") and hasattr(stats, "std"):
        mean, std = stats.mean, stats.std
    else:
        mean, std = stats
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    _check_mean_std(mean, std)
    return mean, std


def _fit_channels(values: Sequence[float], channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    if channels == 1:
        return (sum(values) / len(values),)
    raise ConfigError(f"mean/std have {len(values)} values but the images have {channels} channels")


def _floats(text: str, original: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise ConfigError(
            f"invalid number in normalization {original!r}: {e}. Example: 0.5,0.5,0.5:0.25,0.25,0.25"
        ) from e


def _check_mean_std(mean: Sequence[float], std: Sequence[float]) -> None:
    if not mean or len(mean) not in (1, 3) or len(std) != len(mean):
        raise ConfigError(
            f"mean and std need 1 or 3 values each (same count), got mean={mean} std={std}"
        )
    if any(s <= 0 for s in std):
        raise ConfigError(f"std values must be positive, got {std}")
    if any(not -1.0 <= m <= 2.0 for m in mean) or any(s > 2.0 for s in std):
        raise ConfigError(
            f"mean/std are on the [0, 1] pixel scale (e.g. 0.5, 0.25); got mean={mean} std={std}"
        )


def _check_interpolation(name: str) -> InterpolationMode:
    if name not in _INTERPOLATION:
        raise_unknown("interpolation", str(name), _INTERPOLATION)
    return _INTERPOLATION[name]
