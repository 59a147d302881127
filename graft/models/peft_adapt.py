"""LoRA / DoRA adapters through Hugging Face ``peft`` on any graft (timm/torchvision) model.

:func:`add_adapters` injects low-rank adapters **in place** (the model keeps timm's contract:
``forward_features``, ``group_matcher``, ``get_classifier``), freezes every pretrained weight and
leaves the classifier fully trainable. The frozen weights are listed in
``model.graft_frozen_params`` so that graft's unfreezing (recipe phases) never re-enables them: the
phases only decide *which adapters* train. :func:`merged_copy` folds the adapters into plain weights
(``W + B A * alpha / r``; DoRA's magnitude too), so bundles need no ``peft`` to load, predict or
export. :func:`adapter_state` is the adapters and head alone (written as safetensors).

Default targets (:func:`default_targets`): every ``nn.Linear`` and every dense ``nn.Conv2d``
(``groups == 1``, any kernel size) outside the stem group and the classifier. For a ViT that is the
attention ``qkv``/``proj`` and MLP ``fc1``/``fc2`` linears; for EfficientNet/MobileNet the 1x1
expansion/projection convs and ``conv_head`` (depthwise convs are skipped: ``groups > 1`` is a
per-channel filter with few weights, which a low-rank update cannot compress); for ResNets the 3x3
and 1x1 convs of every block.

Example:
    >>> import timm
    >>> m = timm.create_model("test_vit", num_classes=3)
    >>> info = add_adapters(m, method="lora", rank=4)  # doctest: +SKIP
    >>> sorted({t.rsplit(".", 1)[-1] for t in info.targets})  # doctest: +SKIP
    ['fc1', 'fc2', 'proj', 'qkv']
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass
from typing import Any

from torch import nn

from graft.errors import ConfigError, raise_unknown
from graft.log import get_logger

log = get_logger("graft.models")

METHODS = ("lora", "dora")
INSTALL = "pip install 'graft[peft]'"
ADAPTER_MARKERS = ("lora_A", "lora_B", "lora_magnitude_vector")


@dataclass(frozen=True)
class AdapterInfo:
    """What :func:`add_adapters` did: method, rank, alpha, adapted modules and parameter counts.

    ``total_params`` is the model's own size (adapters not included: what the merged bundle holds),
    so ``trainable_params / total_params`` is the fraction of the model's size that trains.
    """

    method: str
    rank: int
    alpha: float
    targets: tuple[str, ...]
    adapter_params: int
    trainable_params: int
    total_params: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (targets listed by their last name component and count)."""
        leaves: dict[str, int] = {}
        for t in self.targets:
            leaf = t.rsplit(".", 1)[-1]
            leaves[leaf] = leaves.get(leaf, 0) + 1
        return {"method": self.method, "rank": self.rank, "alpha": self.alpha,
                "targets": leaves, "adapter_params": self.adapter_params,
                "trainable_params": self.trainable_params, "total_params": self.total_params}  # fmt: skip


def require_peft() -> Any:
    """The ``peft`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import peft
    except ImportError as err:
        raise ConfigError(
            f"--peft needs the 'peft' package, which is not installed; install it with {INSTALL} "
            "(or train without --peft)."
        ) from err
    return peft


def candidate_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Module name -> layer that peft can adapt (Linear, dense Conv2d), the classifier excluded."""
    head = _classifier_modules(model)
    found = {}
    for name, module in model.named_modules():
        if not name or name in head or any(name.startswith(h + ".") for h in head):
            continue
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1):
            found[name] = module
    return found


def default_targets(model: nn.Module) -> list[str]:
    """Adapted by default: :func:`candidate_layers` outside the stem group (see module doc).

    Example:
        >>> import timm
        >>> sorted({n.rsplit(".", 1)[-1] for n in default_targets(timm.create_model("test_vit"))})
        ['fc1', 'fc2', 'proj', 'qkv']
    """
    from graft.models.groups import param_groups

    groups = param_groups(model)
    stem = {p.rsplit(".", 1)[0] for p in groups[0][1]} if len(groups) > 2 else set()
    return [n for n in candidate_layers(model) if n not in stem]


def select_targets(model: nn.Module, patterns: list[str] | None) -> list[str]:
    """Module names for ``patterns`` (leaf names such as ``qkv``, or globs such as ``blocks.1*.fc?``).

    Every pattern must match at least one adaptable layer; an unknown one raises
    :class:`ConfigError` with the closest layer names.

    Example:
        >>> import timm
        >>> select_targets(timm.create_model("test_vit"), ["qkv"])[:1]
        ['blocks.0.attn.qkv']
    """
    if not patterns:
        return default_targets(model)
    layers = list(candidate_layers(model))
    chosen: list[str] = []
    for pattern in patterns:
        hits = [n for n in layers if _matches(n, pattern)]
        if not hits:
            leaves = sorted({n.rsplit(".", 1)[-1] for n in layers})
            raise_unknown(
                "--peft-targets layer",
                pattern,
                leaves,
                "Give layer names (qkv, fc1, conv_pw) or globs over module paths "
                "(blocks.*.mlp.fc1); only Linear and dense Conv2d layers outside the classifier "
                "can be adapted.",
            )
        chosen += [n for n in hits if n not in chosen]
    return chosen


def add_adapters(
    model: nn.Module,
    method: str = "lora",
    rank: int = 8,
    alpha: float | None = None,
    targets: list[str] | None = None,
) -> AdapterInfo:
    """Inject LoRA (``method="lora"``) or DoRA adapters into ``model`` in place; see module doc.

    ``alpha`` defaults to ``2 * rank`` (scale 2). Pretrained weights are frozen and recorded in
    ``model.graft_frozen_params``; adapters and the classifier are trainable.

    Example:
        >>> import timm
        >>> m = timm.create_model("test_vit", num_classes=3)
        >>> add_adapters(m, "lora", rank=2).trainable_params < 0.5 * sum(p.numel() for p in m.parameters())
        True
    """
    if method not in METHODS:
        raise_unknown("--peft method", method, list(METHODS))
    if rank < 1:
        raise ConfigError(f"--peft-rank must be at least 1, got {rank}; try 8.")
    peft = require_peft()
    names = select_targets(model, targets)
    if not names:
        raise ConfigError(f"{type(model).__name__} has no layer that LoRA can adapt.")
    head_params = _classifier_params(model)
    alpha = float(alpha if alpha is not None else 2 * rank)
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=names,
                             use_dora=method == "dora", lora_dropout=0.0, bias="none")  # fmt: skip
    peft.inject_adapter_in_model(config, model)
    frozen = []
    for name, param in model.named_parameters():
        trains = is_adapter_param(name) or name in head_params
        param.requires_grad_(trains)
        if not trains:
            frozen.append(name)
    model.graft_frozen_params = tuple(frozen)
    info = _info(model, method, rank, alpha, names)
    model.graft_peft = info
    log.info("%s rank %d on %d layers: %d trainable parameters of %d (%.2f%%)", method, rank,
             len(names), info.trainable_params, info.total_params,
             100 * info.trainable_params / max(info.total_params, 1))  # fmt: skip
    return info


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every adapter folded into its base layer (no ``peft`` layers left).

    The copy computes the same outputs (up to float rounding) and has the original parameter names,
    so a bundle saved from it loads without ``peft``. ``model`` itself is unchanged.

    Example:
        >>> plain = merged_copy(adapted)  # doctest: +SKIP
    """
    if getattr(model, "graft_peft", None) is None:
        return model
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = copy.deepcopy(model)
    for name, module in list(merged.named_modules()):
        if not isinstance(module, BaseTunerLayer):
            continue
        module.merge(safe_merge=True)
        parent, _, leaf = name.rpartition(".")
        setattr(merged.get_submodule(parent) if parent else merged, leaf, module.get_base_layer())
    for attr in ("graft_peft", "graft_frozen_params", "peft_config", "_hf_peft_config_loaded"):
        if attr in vars(merged):
            delattr(merged, attr)
    for param in merged.parameters():
        param.requires_grad_(True)
    return merged


def adapter_state(model: nn.Module) -> dict[str, Any]:
    """Adapter and classifier tensors of an adapted model (what ``--peft-save-adapter`` writes)."""
    head = set(_classifier_params(model))
    return {
        n: t.detach().cpu().contiguous()
        for n, t in model.state_dict().items()
        if is_adapter_param(n) or n in head
    }


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or name.rsplit(".", 1)[-1] == pattern


def is_adapter_param(name: str) -> bool:
    """True for a parameter that an adapter added (``...lora_A.default.weight``)."""
    return any(f".{m}." in name for m in ADAPTER_MARKERS)


def _classifier_params(model: nn.Module) -> set[str]:
    if not hasattr(model, "get_classifier"):
        return set()
    ids = {id(p) for p in model.get_classifier().parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def _classifier_modules(model: nn.Module) -> set[str]:
    if not hasattr(model, "get_classifier"):
        return set()
    head = model.get_classifier()
    return {n for n, m in model.named_modules() if m is head}


def _info(model: nn.Module, method: str, rank: int, alpha: float, names: list[str]) -> AdapterInfo:
    params = list(model.named_parameters())
    return AdapterInfo(
        method, rank, alpha, tuple(names),
        adapter_params=sum(p.numel() for n, p in params if is_adapter_param(n)),
        trainable_params=sum(p.numel() for _, p in params if p.requires_grad),
        total_params=sum(p.numel() for n, p in params if not is_adapter_param(n)),
    )  # fmt: skip
