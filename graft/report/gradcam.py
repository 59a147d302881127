"""Grad-CAM (Selvaraju et al., 2017) on the model contract's last spatial feature map.

For a class ``c`` with logit ``y_c`` and a feature map ``A`` (``K`` channels over an ``h x w`` grid)::

    alpha_k = mean_ij  d y_c / d A_kij           (how much channel k matters for c)
    cam     = ReLU( sum_k alpha_k * A_k )         (h x w), then divided by its maximum -> [0, 1]

and bilinearly resized to the input's height and width. Where the map comes from:

- CNNs (timm, torchvision through graft's adapter): the output of ``forward_features`` (``B,C,H,W``;
  ``B,H,W,C`` maps of timm models with ``output_fmt="NHWC"`` are transposed).
- ViTs: ``forward_features`` gives tokens ``B,N,D``; the prefix tokens (class, register) are dropped and
  the patch tokens reshaped to their grid. A class-token head gives the final tokens no gradient
  outside the class token, so the last token-shaped activation whose patch tokens do receive gradient
  is used instead (for timm's ViT: the last block's ``norm1``, the input of its attention).
- Models whose ``forward_features`` is already pooled (hybrids: the fused vector) use the map of a
  convolutional sub-model that honours the contract (the hybrid's CNN branch), else a token branch.
  When none exists, :class:`NoSpatialMapError` says so.

Hooks: ``forward_features`` is wrapped for the duration of one call (and restored), the captured
tensors keep their gradients (``retain_grad``); the model's own ``forward`` computes the logits.

Example:
    >>> import timm, torch
    >>> model = timm.create_model("test_resnet", num_classes=3).eval()
    >>> cam = grad_cam(model, torch.rand(2, 3, 32, 32))
    >>> cam.maps.shape, float(cam.maps.min()) >= 0.0, float(cam.maps.max()) <= 1.0
    ((2, 32, 32), True, True)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graft.errors import GraftError


class NoSpatialMapError(GraftError, ValueError):
    """The model has no spatial feature map that Grad-CAM could explain."""


@dataclass
class CamResult:
    """``maps[i]``: the ``H x W`` Grad-CAM of input ``i`` for class ``targets[i]``, in [0, 1]."""

    maps: np.ndarray
    targets: list[int]
    source: str  # which activation was explained, for the report
    grid: tuple[int, int]  # the feature map's resolution before upsampling


def grad_cam(model: nn.Module, x: torch.Tensor, targets: Sequence[int] | None = None) -> CamResult:
    """Grad-CAM maps of ``model`` for the batch ``x`` (``B,C,H,W``, already normalised).

    ``targets`` are class indices per image (default: the predicted class).

    Example:
        >>> cam = grad_cam(bundle.model, batch, targets=[0, 2])  # doctest: +SKIP
        >>> cam.maps.shape  # doctest: +SKIP
        (2, 224, 224)
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), _capture(model) as captured:
            x = x.detach().clone().requires_grad_(False)
            logits = model(x)
            chosen = _targets(logits, targets)
            score = logits.gather(1, torch.tensor(chosen, device=logits.device)[:, None]).sum()
            score.backward()
        feature, name = _pick(captured, model, x)
        maps = _cam(feature, x.shape[-2:])
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return CamResult(maps, chosen, name, tuple(feature.shape[-2:]))


# ---------------------------------------------------------------------------------- capturing


@dataclass
class _Captured:
    """An activation that kept its gradient: its name, tensor, and layout."""

    name: str
    tensor: torch.Tensor
    layout: str  # "nchw", "nhwc" or "tokens"
    owner: nn.Module  # the (sub-)model it belongs to (for prefix tokens, patch grid)


@contextlib.contextmanager
def _capture(model: nn.Module) -> Iterator[list[_Captured]]:
    """Record ``forward_features`` outputs of ``model`` and of its sub-models, and token-shaped
    activations inside token models, all with ``retain_grad``."""
    captured: list[_Captured] = []
    wrapped: list[nn.Module] = []
    try:
        for name, module in model.named_modules():
            if callable(getattr(module, "forward_features", None)):
                _wrap(module, name or "model", captured)
                wrapped.append(module)
        yield captured
    finally:
        for module in wrapped:
            with contextlib.suppress(AttributeError):
                del module.forward_features  # the instance attribute; the class method is back


def _wrap(module: nn.Module, name: str, captured: list[_Captured]) -> None:
    """Shadow ``module.forward_features`` with a wrapper that records its output and, while it
    runs, every token-shaped (3-d) activation inside it."""
    original = module.forward_features

    def forward_features(*args, **kwargs):
        token_hooks = _token_hooks(module, name, captured)
        try:
            out = original(*args, **kwargs)
        finally:
            for handle in token_hooks:
                handle.remove()
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.retain_grad()
            captured.append(
                _Captured(f"{name}.forward_features", out, _layout(module, out), module)
            )
        return out

    module.forward_features = forward_features  # instance attribute shadows the method


def _token_hooks(
    model: nn.Module, prefix: str, captured: list[_Captured]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Forward hooks that keep every 3-d activation under ``model`` (token models; a class-token
    head leaves the final tokens without patch gradients)."""

    def keep(name: str):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 3 and output.requires_grad:
                output.retain_grad()
                captured.append(_Captured(f"{prefix}.{name}", output, "tokens", model))

        return hook

    return [m.register_forward_hook(keep(n)) for n, m in model.named_modules() if n]


def _layout(module: nn.Module, out: torch.Tensor) -> str:
    if out.dim() == 3:
        return "tokens"
    if out.dim() != 4:
        return "pooled"
    fmt = str(getattr(module, "output_fmt", "NCHW")).upper()
    features = getattr(module, "num_features", None)
    if fmt == "NHWC" or (features and out.shape[1] != features and out.shape[-1] == features):
        return "nhwc"
    return "nchw"


# ---------------------------------------------------------------------------------- choosing


def _pick(captured: list[_Captured], model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The activation to explain, as ``B,C,h,w`` (with its gradient in ``.grad`` of the result)."""
    own = [c for c in captured if c.owner is model and c.name.endswith("forward_features")]
    if own and own[-1].layout in ("nchw", "nhwc"):
        return _as_map(own[-1]), "forward_features"
    if own and own[-1].layout == "tokens":
        return _tokens_map(captured, model, x)
    spatial = [c for c in captured if c.layout in ("nchw", "nhwc") and c.tensor.grad is not None]
    if spatial:  # a hybrid's CNN branch
        best = spatial[-1]
        return _as_map(best), best.name
    tokens = [c for c in captured if c.owner is not model and c.layout == "tokens"]
    if tokens:
        return _tokens_map(captured, tokens[-1].owner, x)
    raise NoSpatialMapError(
        f"{type(model).__name__} has no spatial feature map: its forward_features returns "
        f"{_shape(own)} and no sub-model with a convolutional or token map was found, so Grad-CAM "
        "cannot say where the model looked."
    )


def _shape(own: list[_Captured]) -> str:
    return f"shape {tuple(own[-1].tensor.shape)}" if own else "no tensor"


def _as_map(c: _Captured) -> torch.Tensor:
    act, grad = c.tensor.detach(), _grad(c)
    if c.layout == "nhwc":
        act, grad = act.permute(0, 3, 1, 2), grad.permute(0, 3, 1, 2)
    return _with_grad(act, grad)


def _tokens_map(
    captured: list[_Captured], owner: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, str]:
    """The last token activation of ``owner`` whose patch tokens got gradient, as a map."""
    tokens = [c for c in captured if c.owner is owner and c.layout == "tokens"]
    final = tokens[-1].tensor.shape
    for c in reversed(tokens):
        if c.tensor.shape != final:
            continue
        grid, prefix = _grid(owner, c.tensor.shape[1], x.shape[-2:])
        patch_grad = _grad(c)[:, prefix:]
        if grid and patch_grad.abs().amax() > 1e-12 * max(float(_grad(c).abs().amax()), 1e-30):
            act = c.tensor.detach()[:, prefix:]
            return _with_grad(_to_map(act, grid), _to_map(patch_grad, grid)), c.name
    raise NoSpatialMapError(
        f"the tokens of {type(owner).__name__} ({tuple(final)}) could not be laid out on a patch grid "
        "with gradient for Grad-CAM."
    )


def _to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Patch tokens ``B,N,D`` (row-major patches) as a ``B,D,h,w`` map."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def _grid(owner: nn.Module, n_tokens: int, hw: Sequence[int]) -> tuple[tuple[int, int] | None, int]:
    """(patch grid (h, w), number of prefix tokens) for ``n_tokens`` tokens of an ``hw`` input."""
    known = getattr(owner, "num_prefix_tokens", None)
    candidates = [int(known)] if known is not None else [1, 0, *range(2, 9)]
    height, width = int(hw[0]), int(hw[1])
    for prefix in candidates:
        n = n_tokens - prefix
        if n <= 0:
            continue
        h = round(math.sqrt(n * height / width))
        for gh in (h, h - 1, h + 1):
            if gh > 0 and n % gh == 0:
                return (gh, n // gh), prefix
    return None, 0


def _grad(c: _Captured) -> torch.Tensor:
    grad = c.tensor.grad
    return torch.zeros_like(c.tensor) if grad is None else grad.detach()


def _with_grad(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    out = act.float().clone()
    out.grad = grad.float().clone()
    return out


def _targets(logits: torch.Tensor, targets: Sequence[int] | None) -> list[int]:
    if targets is None:
        return logits.argmax(dim=1).tolist()
    chosen = [int(t) for t in targets]
    if len(chosen) != logits.shape[0]:
        raise ValueError(f"{len(chosen)} targets for a batch of {logits.shape[0]} images")
    bad = [t for t in chosen if not 0 <= t < logits.shape[1]]
    if bad:
        raise ValueError(f"target classes {bad} out of range for {logits.shape[1]} classes")
    return chosen


def _cam(feature: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """ReLU(sum_k alpha_k A_k), each map divided by its maximum, resized to ``size``."""
    weights = feature.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * feature).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    cam = cam.clamp_min(0)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return (cam / peak).clamp(0, 1).numpy()
