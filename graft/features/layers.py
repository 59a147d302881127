"""Which activations to extract: pooled pre-logits, the last feature map, or any named layer.

``layer=None`` uses the model contract: ``forward_features`` (the unpooled map) and, for
``pool="avg"``, ``forward_head(pre_logits=True)`` (the model's own pooling: average for CNNs, the
class token or token mean for ViTs). ``layer`` may also be a stage index into ``model.feature_info``
(timm's ``features_only`` stages, e.g. ``2`` -> ``layer2`` of a ResNet) or a module name from
``model.named_modules()`` (torchvision's ``create_feature_extractor`` naming); its output is captured
with a forward hook and the forward pass stops right after it.

Example:
    >>> import graft.models as gm, torch
    >>> m = gm.create_model("test_resnet", num_classes=0, pretrained=False).eval()
    >>> LayerReader(m, layer=None, pool="none")(torch.zeros(1, 3, 256, 256)).shape
    torch.Size([1, 96, 8, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from graft.errors import ConfigError, raise_unknown

POOLS = ("avg", "max", "none")


class _Stop(Exception):
    """Raised by the hook to end the forward pass once the wanted layer has run."""


def resolve_layer(model: nn.Module, layer: int | str | None) -> str | None:
    """The module name for ``layer`` (None stays None); unknown names get close suggestions."""
    if layer is None or layer == "":
        return None
    if isinstance(layer, str) and layer.lstrip("-").isdigit():
        layer = int(layer)
    if isinstance(layer, int):
        stages = [info["module"] for info in getattr(model, "feature_info", []) or []]
        if not stages:
            raise ConfigError(
                f"layer={layer} is a stage index, but {type(model).__name__} has no feature_info. "
                "Pass a module name instead (see model.named_modules())."
            )
        if not -len(stages) <= layer < len(stages):
            raise ConfigError(
                f"layer index {layer} is out of range: the model has {len(stages)} stages "
                f"({', '.join(f'{i}={s}' for i, s in enumerate(stages))}). Pass 0..{len(stages) - 1}."
            )
        return stages[layer]
    names = [n for n, _ in model.named_modules() if n]
    if layer not in names:
        raise_unknown("layer", layer, names, hint="List them with model.named_modules().")
    return layer


def check_pool(pool: str) -> str:
    """Validate a pooling name (``avg``, ``max`` or ``none``)."""
    if pool not in POOLS:
        raise_unknown("pool", str(pool), POOLS)
    return pool


class LayerReader(nn.Module):
    """Maps a normalised batch to the requested activations (pooled or not), ``float32``."""

    def __init__(self, model: nn.Module, layer: int | str | None = None, pool: str = "avg") -> None:
        super().__init__()
        self.model = model
        self.layer = resolve_layer(model, layer)
        self.pool = check_pool(pool)
        self._module = dict(model.named_modules())[self.layer] if self.layer else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._module is None:
            return self._from_contract(x).float()
        return pool_map(self._capture(x), self.pool).float()

    def _from_contract(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.model.forward_features(x)
        if self.pool == "avg":
            return self.model.forward_head(maps, pre_logits=True)
        return pool_map(maps, self.pool)

    def _capture(self, x: torch.Tensor) -> torch.Tensor:
        seen: list[torch.Tensor] = []

        def hook(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
            seen.append(output[0] if isinstance(output, (tuple, list)) else output)
            raise _Stop

        handle = self._module.register_forward_hook(hook)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not seen:
            raise ConfigError(
                f"layer '{self.layer}' did not run during the forward pass of the model."
            )
        return seen[0]


def pool_map(maps: torch.Tensor, pool: str) -> torch.Tensor:
    """Pool a ``B,C,H,W`` map over space, or ``B,N,D`` tokens over ``N``; ``none`` keeps it."""
    if pool == "none" or maps.ndim == 2:
        return maps
    dims = tuple(range(2, maps.ndim)) if maps.ndim == 4 else (1,)
    return maps.mean(dim=dims) if pool == "avg" else maps.amax(dim=dims)
