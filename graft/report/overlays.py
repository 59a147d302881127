"""The Grad-CAM section: overlays for a sample of the predicted images, for the predicted class.

Each overlay shows the model's input (the bundle's evaluation transform, de-normalised) next to the
same image with the Grad-CAM map (:mod:`graft.report.gradcam`) blended over it in a jet colour map.

Example:
    >>> section = gradcam_section(ctx)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from graft.report.context import ReportContext
from graft.report.figures import png_data_uri
from graft.report.gradcam import NoSpatialMapError, grad_cam
from graft.report.html import Section, esc, figure, img
from graft.report.mistakes import fit_to
from graft.report.predictions import MissingPiece, bounded

PANEL = 160  # pixels per panel


def gradcam_section(ctx: ReportContext) -> Section:
    """Overlays for up to ``options.gradcam`` images (a seeded sample of the predictions)."""
    section = Section("gradcam", "Grad-CAM")
    try:
        preds, bundle = ctx.predictions(), ctx.bundle()
    except MissingPiece as e:
        section.notes.append(f"no Grad-CAM: {e}")
        return section
    if not isinstance(bundle.model, nn.Module):
        section.notes.append(
            f"no Grad-CAM: a {bundle.kind} bundle has no PyTorch model to take gradients of"
        )
        return section
    index = {c: i for i, c in enumerate(bundle.classes)}
    picked = bounded(list(range(len(preds.paths))), ctx.options.gradcam, seed=1)
    figures, source = [], ""
    for i in picked:
        try:
            x = _input(bundle, preds.paths[i])
        except (OSError, ValueError):
            section.notes.append(f"{preds.paths[i]} could not be read any more")
            continue
        target = index.get(preds.classes[preds.pred[i]])
        try:
            cam = grad_cam(bundle.model, x, None if target is None else [target])
        except NoSpatialMapError as e:
            section.notes.append(f"no Grad-CAM for this model: {e}")
            return section
        source = cam.source
        panel = overlay(_display(x[0], bundle.data_config), cam.maps[0])
        tag = img(png_data_uri(panel), f"Grad-CAM: {preds.paths[i]}", "gradcam",
                  target=bundle.classes[cam.targets[0]], true=preds.classes[preds.true[i]])  # fmt: skip
        figures.append(figure(tag, [preds.paths[i].replace("\\", "/").split("/")[-1],
                                    f"true: {preds.classes[preds.true[i]]}",
                                    f"predicted: {preds.classes[preds.pred[i]]} ({preds.confidence[i]:.3f})"]))  # fmt: skip
    where = _where(source)
    section.body = (f"<p>Grad-CAM for the predicted class on {esc(len(figures))} images; map taken "
                    f"from {esc(where)}. Left: the model's input; right: the map over it (red: most "
                    "evidence for the class).</p>"
                    f'<div class="grid">{"".join(figures)}</div>')  # fmt: skip
    return section


def _where(source: str) -> str:
    if source == "forward_features":
        return "the last feature map (forward_features)"
    if source.startswith("branches."):
        return f"the branch {source.split('.')[1]} of the hybrid ({source}): the fused features have no map"
    return f"the patch tokens of {source} (reshaped to their grid)" if source else "?"


def _input(bundle: Any, path: str) -> torch.Tensor:
    from graft.data.images import load_image
    from graft.inference.runner import eval_transform

    channels = int(bundle.data_config["input_size"][0])
    image = load_image(path, mode="L" if channels == 1 else "RGB")
    return eval_transform(bundle)(image)[None].to(bundle.device)


def _display(x: torch.Tensor, data_config: dict[str, Any]) -> np.ndarray:
    """The normalised input ``C,H,W`` back as ``H,W,3`` uint8 pixels."""
    mean = torch.tensor(data_config.get("mean") or [0.0] * x.shape[0], dtype=torch.float32)
    std = torch.tensor(data_config.get("std") or [1.0] * x.shape[0], dtype=torch.float32)
    pixels = (x.detach().cpu().float() * std[:, None, None] + mean[:, None, None]).clamp(0, 1)
    arr = (pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """``image`` (H,W,3 uint8) and, beside it, ``cam`` (H,W in [0, 1]) blended over it (jet).

    Example:
        >>> overlay(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8))).size
        (328, 160)
    """
    from matplotlib import colormaps

    heat = (colormaps["jet"](np.clip(cam, 0, 1))[:, :, :3] * 255).astype(np.float32)
    blended = ((1 - alpha) * image.astype(np.float32) + alpha * heat).round().astype(np.uint8)
    left, right = (fit_to(Image.fromarray(a), PANEL) for a in (image, blended))
    out = Image.new("RGB", (left.width + right.width + 8, max(left.height, right.height)), "white")
    out.paste(left, (0, 0))
    out.paste(right, (left.width + 8, 0))
    return out
