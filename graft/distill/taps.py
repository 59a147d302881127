"""Feature taps: which features of a model feed the distillation losses.

A layer pair is ``student_layer:teacher_layer``. The special layer name ``features`` is the
``forward_features`` output (the last stage's map, or a ViT's tokens); ``auto`` means the pair
``features:features``. Any other name is a module path from ``model.named_modules()`` read with a
forward hook.

Example:
    >>> parse_pairs("auto")
    [('features', 'features')]
    >>> parse_pairs("layer3:blocks.4, layer4:features")
    [('layer3', 'blocks.4'), ('layer4', 'features')]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from graft.errors import ConfigError, raise_unknown

FEATURES = "features"
PairsSpec = str | Sequence[tuple[str, str]] | Sequence[str] | None


def parse_pairs(spec: PairsSpec) -> list[tuple[str, str]]:
    """Layer pairs from ``"auto"``, ``"none"``, ``"s1:t1,s2:t2"`` or a list of pairs / ``"s:t"`` strings."""
    if spec is None:
        return []
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() in ("", "none", "off"):
            return []
        if text.lower() == "auto":
            return [(FEATURES, FEATURES)]
        items: Iterable = [part for part in text.split(",") if part.strip()]
    else:
        items = spec
    return [_pair(item) for item in items]


def _pair(item: str | Sequence[str]) -> tuple[str, str]:
    if isinstance(item, str):
        if item.strip().lower() == "auto":
            return (FEATURES, FEATURES)
        parts = item.split(":")
    else:
        parts = list(item)
    if len(parts) != 2 or not all(str(p).strip() for p in parts):
        raise ConfigError(
            f"feature pair {item!r} is not 'student_layer:teacher_layer'. Examples: 'auto', "
            "'layer3:blocks.5', 'features:features'; list layers with graft.distill.layer_names(model)."
        )
    return str(parts[0]).strip(), str(parts[1]).strip()


def layer_names(model: nn.Module) -> list[str]:
    """Names a feature pair may use for ``model``: ``features`` and every named sub-module.

    Example:
        >>> import timm
        >>> "layer1" in layer_names(timm.create_model("test_resnet"))
        True
    """
    return [FEATURES] + [name for name, _ in model.named_modules() if name]


class FeatureTaps:
    """Run a model and collect its logits plus the features at ``layers`` (in that order).

    Hooks are registered once; :meth:`close` removes them (the model is then as before).

    Example:
        >>> import timm, torch
        >>> taps = FeatureTaps(timm.create_model("test_resnet", num_classes=3), ["layer2", "features"])
        >>> logits, feats = taps(torch.randn(1, 3, 32, 32))
        >>> logits.shape[-1], len(feats)
        (3, 2)
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], role: str = "model") -> None:
        self.model = model
        self.layers = list(layers)
        self._store: dict[str, Tensor] = {}
        self._handles = []
        modules = dict(model.named_modules())
        for name in self.layers:
            if name == FEATURES:
                continue
            if name not in modules:
                raise_unknown(
                    f"{role} layer",
                    name,
                    layer_names(model),
                    hint=f"Use 'features' for the {role}'s forward_features output, or one of its module "
                    "names (graft.distill.layer_names(model) lists them).",
                )
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            self._store[name] = _first_tensor(output, name)

        return hook

    def __call__(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(logits, [feature per layer])`` for input batch ``x``."""
        self._store = {}
        features = self.model.forward_features(x)
        logits = self.model.forward_head(features)
        self._store[FEATURES] = features
        out = [self._store[name] for name in self.layers]
        self._store = {}
        return logits, out

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def strip_copies(self, copy: nn.Module) -> None:
        """Remove this object's hooks from ``copy``, a deep copy of the model (e.g. an EMA model)."""
        ids = {handle.id for handle in self._handles}
        for module in copy.modules():
            for hook_id in ids & set(module._forward_hooks):
                del module._forward_hooks[hook_id]


def _first_tensor(output, name: str) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, Tensor):
                return item
    if isinstance(output, dict):
        for item in output.values():
            if isinstance(item, Tensor):
                return item
    raise ConfigError(
        f"layer '{name}' returns {type(output).__name__}, not a tensor; tap another layer."
    )
