"""The input size of a run when ``--image-size`` is not given: from the training images' sizes.

In the spirit of BiT's HyperRule (Kolesnikov et al. 2020, which resizes images smaller than 96 x 96
to 160 and crops 128, larger ones to 448/384), for CPU budgets:

- the median shorter side of the training images (read from the file headers of up to 256 of
  them) is below ``SMALL_IMAGE`` = 96 px: train at ``SMALL_SIZE`` = 112 px (or the weights' own
  size when that is smaller). A 28 x 28 image carries no more detail at 224 px; a training step at
  112 px costs about a quarter of one at 224 px (4.1x measured on EfficientNet-Lite0, where 128 px
  saves only 3.2x); accuracy is measured in ``bench/bench_defaults.py`` (docs/benchmarks/defaults.md);
- otherwise: the weights' pretrained input size (224 px for most), never larger (the cost grows
  with the square of the size, and upscaling pays only with GPU budgets).

Example:
    >>> choose_image_size([(28, 28)] * 10, pretrained=224)
    (112, 'training images are small (median shorter side 28 px < 96 px): 112 px')
    >>> choose_image_size([(500, 375)] * 10, pretrained=224)[0]
    224
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import median

SMALL_IMAGE = 96  # median shorter side (px) below which images count as small (BiT's threshold)
SMALL_SIZE = 112  # training size for small images (measured: bench/bench_defaults.py)
SAMPLE = 256  # image headers read to find the size distribution


def choose_image_size(sizes: Sequence[tuple[int, int]], pretrained: int) -> tuple[int, str]:
    """(size in px, reason) for images of ``sizes`` (width, height) and the weights' ``pretrained`` size."""
    if not sizes:
        return pretrained, f"no readable training image sizes: the weights' {pretrained} px"
    shorter = median(min(w, h) for w, h in sizes)
    if shorter < SMALL_IMAGE:
        size = min(SMALL_SIZE, pretrained)
        return size, (
            f"training images are small (median shorter side {shorter:g} px < {SMALL_IMAGE} px): "
            f"{size} px"
        )
    return pretrained, (
        f"training images are large enough (median shorter side {shorter:g} px >= {SMALL_IMAGE} px): "
        f"the weights' {pretrained} px"
    )


def image_sizes(paths: Sequence[str | Path], limit: int = SAMPLE) -> list[tuple[int, int]]:
    """(width, height) of up to ``limit`` images spread evenly over ``paths``, from their headers;
    unreadable files are skipped.

    Example:
        >>> image_sizes(["photo.jpg"])  # doctest: +SKIP
        [(640, 480)]
    """
    from PIL import Image

    step = max(1, len(paths) // limit) if limit else 1
    out = []
    for path in list(paths)[::step][:limit]:
        try:
            with Image.open(path) as img:
                out.append(img.size)
        except Exception:  # decoding problems are reported by the dataset, not here
            continue
    return out


def auto_image_size(samples: Sequence[tuple[str | Path, int]], pretrained: int) -> tuple[int, str]:
    """:func:`choose_image_size` for training ``samples`` (``(path, label)`` pairs, as scanned).

    Example:
        >>> auto_image_size(splits.train, pretrained=224)  # doctest: +SKIP
        (112, 'training images are small (median shorter side 28 px < 96 px): 112 px')
    """
    return choose_image_size(image_sizes([p for p, _ in samples]), pretrained)


def auto_size_for(pretrained_cfg: dict, samples: Sequence[tuple[str | Path, int]]) -> int | None:
    """The automatic input size for a model with ``pretrained_cfg`` trained on ``samples``;
    ``None`` for a hybrid (each branch keeps its own input size).

    Example:
        >>> auto_size_for(model.pretrained_cfg, splits.train)  # doctest: +SKIP
        112
    """
    from graft.log import get_logger

    if "branches" in (pretrained_cfg or {}):
        return None
    pretrained = int(tuple(pretrained_cfg.get("input_size", (3, 224, 224)))[-1])
    size, reason = auto_image_size(samples, pretrained)
    get_logger("graft.data").info("image size: %s", reason)
    return size
