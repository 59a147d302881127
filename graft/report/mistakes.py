"""The most confident mistakes: wrong predictions sorted by the probability the model gave them,
shown as thumbnails with the true class, the predicted class and that probability.

Example:
    >>> most_confident_mistakes(preds, 5)  # doctest: +SKIP
    [17, 3, 42]
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from graft.report.context import ReportContext
from graft.report.figures import png_data_uri
from graft.report.html import Section, esc, figure, img
from graft.report.predictions import Predictions

THUMB = 112  # pixels on the longer side; small images are enlarged (pixelated) to this


def mistakes_section(ctx: ReportContext) -> Section:
    """Thumbnails of up to ``options.mistakes`` wrong predictions, most confident first."""
    section = Section("mistakes", "Most confident mistakes")
    preds = ctx.predictions_or_note(section.notes)
    if preds is None:
        return section
    chosen = most_confident_mistakes(preds, ctx.options.mistakes)
    wrong = int((preds.true != preds.pred).sum())
    figures, unreadable = [], []
    for i in chosen:
        thumb = thumbnail(preds.paths[i])
        if thumb is None:
            unreadable.append(preds.paths[i])
            continue
        caption = [_short(preds.paths[i]), f"true: {preds.classes[preds.true[i]]}",
                   f"predicted: {preds.classes[preds.pred[i]]}", f"confidence: {preds.confidence[i]:.3f}"]  # fmt: skip
        tag = img(thumb, f"mistake: {preds.paths[i]}", "mistake", true=preds.classes[preds.true[i]],
                  predicted=preds.classes[preds.pred[i]], confidence=f"{preds.confidence[i]:.4f}")  # fmt: skip
        figures.append(figure(tag, caption))
    if unreadable:
        section.notes.append(
            f"{len(unreadable)} image(s) could not be read any more, e.g. {unreadable[0]}"
        )
    if not wrong:
        section.notes.append(f"no mistakes among the {len(preds.paths)} predictions")
    section.body = (f"<p>{esc(wrong)} of {esc(len(preds.paths))} predictions are wrong ({esc(preds.source)}); "
                    f"the {esc(len(figures))} most confident are shown.</p>"
                    f'<div class="grid">{"".join(figures)}</div>')  # fmt: skip
    return section


def most_confident_mistakes(preds: Predictions, n: int) -> list[int]:
    """Indices of the ``n`` wrong predictions with the highest confidence (ties: original order).

    Example:
        >>> import numpy as np
        >>> p = Predictions(["a", "b"], ["x", "y", "z"], np.array([0, 1, 0]), np.array([1, 1, 1]),
        ...                 np.array([0.6, 0.9, 0.8]), {}, "test")
        >>> most_confident_mistakes(p, 5)
        [2, 0]
    """
    wrong = np.flatnonzero(preds.true != preds.pred)
    order = wrong[np.argsort(-preds.confidence[wrong], kind="stable")]
    return [int(i) for i in order[: max(n, 0)]]


def thumbnail(path: str, size: int = THUMB) -> str | None:
    """The image at ``path`` scaled to ``size`` px on its longer side, as a ``data:`` URI."""
    from graft.data.images import load_image

    try:
        image = load_image(path)
    except (OSError, ValueError):  # ImageError is a ValueError
        return None
    return png_data_uri(fit_to(image, size))


def fit_to(image: Image.Image, size: int) -> Image.Image:
    """``image`` resized so its longer side is ``size``; enlargements keep pixels sharp."""
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return image.resize(new, resample)


def _short(path: str, keep: int = 2) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-keep:])
