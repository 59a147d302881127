"""TensorFlow "SAME" padding made static for a fixed input size, before ONNX export.

timm's ``tf_*`` models (EfficientNet-Lite, ...) pad their stride-2 convolutions and pools at run time
(``Conv2dSame``: the padding is computed from the input's height and width). Traced to ONNX that is a
``Shape -> Gather -> Div -> Ceil -> ... -> Pad`` chain in front of each such convolution, which blocks
onnxruntime's fusions: int8 QDQ convolutions then run as dequantise + fp32 convolution. An exported
model has a fixed height and width (only the batch axis is dynamic), so the padding is known: each such
module becomes a constant ``ZeroPad2d`` (folded into the convolution by onnxruntime) + the plain layer.

Example:
    >>> fixed = freeze_same_padding(model, (3, 224, 224))  # doctest: +SKIP
    >>> torch.equal(fixed(x), model(x))  # doctest: +SKIP
    True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from graft.log import get_logger

log = get_logger("graft.export")


def _same_padding_types() -> tuple[type, ...]:
    from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame

    return Conv2dSame, Conv2dSameExport, MaxPool2dSame, AvgPool2dSame


def freeze_same_padding(model: nn.Module, input_size: Sequence[int]) -> nn.Module:
    """A copy of ``model`` whose dynamic "SAME" paddings are constants for inputs of ``input_size`` (C, H, W).

    Returns ``model`` itself when it has none. Outputs are unchanged (zero padding before the layer is
    what the dynamic version computes); the export's parity check confirms it.
    """
    types = _same_padding_types()
    if not any(isinstance(m, types) for m in model.modules()):
        return model
    fixed = copy.deepcopy(model).eval()
    sizes = _input_sizes(fixed, types, input_size)
    for name, size in sizes.items():
        parent, _, leaf = name.rpartition(".")
        owner = fixed.get_submodule(parent) if parent else fixed
        setattr(owner, leaf, _static(owner.get_submodule(leaf), size))
    log.info("export: %d 'SAME'-padded layers given constant padding", len(sizes))
    return fixed


def _input_sizes(
    model: nn.Module, types: tuple[type, ...], input_size: Sequence[int]
) -> dict[str, tuple[int, int]]:
    """Height and width that reach each dynamically padded module, from one forward pass."""
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:
            sizes.setdefault(name, tuple(args[0].shape[-2:]))

        return hook

    hooks = [
        module.register_forward_pre_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, types)
    ]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *map(int, input_size)))
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def _pads(size: tuple[int, int], kernel, stride, dilation) -> tuple[int, int, int, int]:
    from timm.layers.padding import pad_same_arg

    pair = nn.modules.utils._pair
    return tuple(pad_same_arg(list(size), pair(kernel), pair(stride), pair(dilation)))


def _static(module: nn.Module, size: tuple[int, int]) -> nn.Module:
    """``ZeroPad2d`` (or the pool's padding value) + the same layer without dynamic padding."""
    if isinstance(module, nn.Conv2d):
        pads = _pads(size, module.kernel_size, module.stride, module.dilation)
        conv = nn.Conv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            0,
            module.dilation,
            module.groups,
            module.bias is not None,
        )
        conv.load_state_dict(module.state_dict())
        return nn.Sequential(nn.ZeroPad2d(pads), conv) if any(pads) else conv
    dilation = getattr(module, "dilation", 1)
    pads = _pads(size, module.kernel_size, module.stride, dilation)
    if isinstance(module, nn.MaxPool2d):
        pool = nn.MaxPool2d(module.kernel_size, module.stride, 0, dilation, False, module.ceil_mode)
        return nn.Sequential(nn.ConstantPad2d(pads, float("-inf")), pool) if any(pads) else pool
    pool = nn.AvgPool2d(
        module.kernel_size, module.stride, 0, module.ceil_mode, module.count_include_pad
    )
    return nn.Sequential(nn.ZeroPad2d(pads), pool) if any(pads) else pool
