"""Which normalization a dataset wants: its own mean/std, or the backbone's pretrained ones.

``pretrained`` keeps the statistics the backbone was trained with; ``dataset`` is recommended when
the dataset is far from them (a channel mean more than :data:`MEAN_SHIFT_LIMIT` pretrained standard
deviations away, or a std ratio outside :data:`STD_RATIO_RANGE`). :func:`graft.data.stats.dataset_stats`
applies it; ``bench/bench_norm.py`` measures both choices.

Example:
    >>> recommend_normalization([0.45] * 3, [0.25] * 3, 0.0, [0.45] * 3, [0.22] * 3)[0]
    'pretrained'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MEAN_SHIFT_LIMIT = 1.0
STD_RATIO_RANGE = (0.5, 2.0)
GRAYSCALE_MAJORITY = 0.9


def recommend_normalization(
    mean: Sequence[float],
    std: Sequence[float],
    grayscale_share: float,
    pretrained_mean: Sequence[float],
    pretrained_std: Sequence[float],
) -> tuple[str, str]:
    """``("pretrained" | "dataset", reason)`` from how far the dataset is from the pretrained stats.

    Example:
        >>> recommend_normalization([0.1] * 3, [0.1] * 3, 1.0, [0.5] * 3, [0.5] * 3)[0]
        'dataset'
    """
    shift = max(
        abs(m - pm) / ps for m, pm, ps in zip(mean, pretrained_mean, pretrained_std, strict=True)
    )
    ratios = [s / ps for s, ps in zip(std, pretrained_std, strict=True)]
    lo, hi = STD_RATIO_RANGE
    mean_far = shift > MEAN_SHIFT_LIMIT
    std_far = min(ratios) < lo or max(ratios) > hi
    spread = (
        f"{min(ratios):.2f}"
        if max(ratios) - min(ratios) < 0.005
        else (f"{min(ratios):.2f}-{max(ratios):.2f}")
    )
    mean_text = (
        f"channel means up to {shift:.2f} pretrained std from the pretrained means "
        f"({'above' if mean_far else 'within'} the limit {MEAN_SHIFT_LIMIT})"
    )
    std_text = (
        f"std {spread} x the pretrained std "
        f"({'outside' if std_far else 'inside'} the range {lo}-{hi})"
    )
    numbers = f"{mean_text}, {std_text}"
    if not mean_far and not std_far:
        return "pretrained", (
            f"{numbers}: the inputs stay in the range of the pretrained statistics, so they are "
            "kept, as the backbone was trained with them (measured: docs/how-to/normalization.md)"
        )
    kind = (
        f"the images are grayscale ({grayscale_share:.0%}, e.g. medical or scanned data); "
        if grayscale_share >= GRAYSCALE_MAJORITY
        else ""
    )
    which = " and ".join(n for n, far in (("the mean", mean_far), ("the std", std_far)) if far)
    return "dataset", (
        f"{kind}{numbers}: {which} {'are' if ' and ' in which else 'is'} out of bounds, so the dataset's own mean/std bring the inputs "
        "back to the range the backbone was trained on (measured: docs/how-to/normalization.md)"
    )


def pretrained_cfg_for(name: str) -> dict[str, Any]:
    """The pretrained config (mean, std, input size, ...) of model ``name``, without loading weights."""
    try:
        from graft.models import create_model
    except ImportError:
        create_model = None
    if create_model is not None:
        return dict(create_model(name, pretrained=False).pretrained_cfg)
    import timm

    arch = {
        "efficientnet_lite0": "tf_efficientnet_lite0",
        "efficientnet_lite1": "tf_efficientnet_lite1",
        "efficientnet_lite2": "tf_efficientnet_lite2",
    }.get(name, name)
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        from graft.errors import raise_unknown

        raise_unknown("model", name, timm.list_models())
    return cfg.to_dict()
