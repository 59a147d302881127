"""``model.pretrained_cfg``: the preprocessing that goes with the weights (timm's keys).

Keys: ``input_size`` (C, H, W), ``interpolation``, ``crop_pct``, ``crop_mode``, ``mean``, ``std``,
``num_classes``, ``first_conv``, ``classifier``, ``weights`` (where the weights came from, or None),
and ``label_names`` when the model still has its ImageNet classifier.

Example:
    >>> m = create_model("efficientnet_lite0")  # doctest: +SKIP
    >>> m.pretrained_cfg["mean"], m.pretrained_cfg["label_names"][281]  # doctest: +SKIP
    ((0.5, 0.5, 0.5), 'tabby')
"""

from __future__ import annotations

import functools
import math
from typing import Any

from torch import nn

from graft.models.names import ModelName
from graft.models.tv_adapter import family_of
from graft.models.weights import FoundWeights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_KEEP = (
    "input_size",
    "interpolation",
    "crop_pct",
    "crop_mode",
    "mean",
    "std",
    "num_classes",
    "first_conv",
    "classifier",
    "tag",
    "hf_hub_id",
    "url",
    "license",
)


def timm_pretrained_cfg(
    model: nn.Module, found: FoundWeights | None, in_chans: int, head_kept: bool
) -> dict[str, Any]:
    """The timm model's config, adapted to ``in_chans``, with the weights' source and label names."""
    cfg = {k: v for k, v in dict(model.pretrained_cfg).items() if k in _KEEP}
    cfg = _for_channels(cfg, in_chans)
    cfg["weights"] = found.source if found else None
    if head_kept and cfg.get("num_classes") == 1000 and model.num_classes == 1000:
        cfg["label_names"] = imagenet_label_names()
    return cfg


def tv_weights_members(parsed: ModelName) -> list[Any]:
    """Torchvision weights enum members to try, best first (the given tag, else DEFAULT then the others)."""
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(parsed.arch)
    except (ValueError, KeyError):
        return []
    if parsed.tag:
        return [enum[parsed.tag]]
    members = [enum.DEFAULT] if "DEFAULT" in enum.__members__ else []
    members += [m for m in enum if m not in members]
    return members


def tv_pretrained_cfg(
    parsed: ModelName, found: FoundWeights | None, in_chans: int, head_kept: bool
) -> dict[str, Any]:
    """Preprocessing from the torchvision weights enum (the loaded weights, else the default ones)."""
    members = tv_weights_members(parsed)
    chosen = next(
        (m for m in members if found and found.key == f"tv:{parsed.arch}.{m.name}"),
        members[0] if members else None,
    )
    cfg: dict[str, Any] = {
        "input_size": (3, 224, 224), "interpolation": "bilinear", "crop_pct": 0.875, "crop_mode": "center",
        "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "num_classes": 1000,
        "first_conv": family_of(parsed.arch).first_conv, "classifier": family_of(parsed.arch).fc,
    }  # fmt: skip
    if chosen is not None:
        cfg.update(_tv_transform_cfg(chosen))
        cfg["tag"] = chosen.name
        cfg["url"] = chosen.url
    cfg = _for_channels(cfg, in_chans)
    cfg["weights"] = found.source if found else None
    categories = chosen.meta.get("categories") if chosen is not None else None
    if head_kept and categories:
        cfg["label_names"] = list(categories)
    return cfg


def _tv_transform_cfg(weights: Any) -> dict[str, Any]:
    t = weights.transforms()
    crop = _first(getattr(t, "crop_size", 224))
    resize = _first(getattr(t, "resize_size", crop))
    interp = getattr(t, "interpolation", None)
    return {
        "input_size": (3, crop, crop),
        "interpolation": getattr(interp, "value", "bilinear"),
        "crop_pct": round(crop / resize, 4) if resize else 1.0,
        "mean": tuple(getattr(t, "mean", IMAGENET_MEAN)),
        "std": tuple(getattr(t, "std", IMAGENET_STD)),
        "num_classes": len(weights.meta.get("categories") or []) or 1000,
    }


def _first(v: Any) -> int:
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def _for_channels(cfg: dict[str, Any], in_chans: int) -> dict[str, Any]:
    """Adapt input_size/mean/std to ``in_chans``: 1 channel averages them, more repeat them."""
    cfg = dict(cfg)
    _, h, w = cfg.get("input_size", (3, 224, 224))
    cfg["input_size"] = (in_chans, h, w)
    for key in ("mean", "std"):
        vals = tuple(cfg.get(key) or (IMAGENET_MEAN if key == "mean" else IMAGENET_STD))
        if in_chans == 1:
            cfg[key] = (sum(vals) / len(vals),)
        elif in_chans != len(vals):
            cfg[key] = (vals * math.ceil(in_chans / len(vals)))[:in_chans]
        else:
            cfg[key] = vals
    return cfg


@functools.cache
def _imagenet_names() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    return tuple(d.split(",")[0].strip() for d in ImageNetInfo().label_descriptions())


def imagenet_label_names() -> list[str]:
    """The 1000 ImageNet-1k class names, short form (``'tiger cat'``), from timm's offline tables."""
    return list(_imagenet_names())
