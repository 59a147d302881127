"""``create_model``: any timm model or torchvision classifier, offline-first weights, a fresh head.

Example:
    >>> m = create_model("test_efficientnet", num_classes=3, pretrained=False)
    >>> import torch
    >>> m(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 3])
    >>> create_model(**m.graft_spec, pretrained=False).graft_spec == m.graft_spec
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from graft.errors import ConfigError
from graft.log import get_logger
from graft.models.heads import head_in_features, head_spec, init_head_, make_head
from graft.models.loading import classifier_path, load_pretrained
from graft.models.names import DEFAULT_BACKBONE, ModelName, parse_name
from graft.models.pretrained import timm_pretrained_cfg, tv_pretrained_cfg, tv_weights_members
from graft.models.shipped import is_lite_layout, rename_efficientnet_lite
from graft.models.sources import source_for
from graft.models.tv_adapter import TorchvisionAdapter, build_tv_model, family_of
from graft.models.weights import FoundWeights, WeightsCandidate, WeightsQuery, resolve_weights

log = get_logger("graft.models")


def create_model(
    name: str = DEFAULT_BACKBONE,
    num_classes: int | None = None,
    pretrained: bool = True,
    in_chans: int = 3,
    head: str | dict[str, Any] = "linear",
    weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a backbone with a head for ``num_classes`` classes, loading pretrained weights offline first.

    ``name``: a timm name (``resnet50``, ``vit_small_patch16_224.augreg_in21k``), a torchvision one
    (``tv:resnet18``, ``tv:vgg16.IMAGENET1K_V1``), an alias (``efficientnet_lite0``), or a hybrid
    ``a+b`` (see :mod:`graft.hybrid`). ``num_classes=None`` keeps the pretrained head, ``0`` gives a
    feature extractor. ``head``: ``"linear"``, ``"mlp"`` or ``{"type": "mlp", "hidden": 512,
    "dropout": 0.2}``. ``weights``: a ``.pth``/``.safetensors`` state dict to load instead of searching.
    Extra ``kwargs`` go to the timm / torchvision constructor (e.g. ``drop_rate``, ``img_size``).

    The returned model follows timm's contract and carries ``pretrained_cfg`` (preprocessing) and
    ``graft_spec`` (``create_model(**model.graft_spec, pretrained=False)`` rebuilds it).

    Example:
        >>> vgg = create_model("tv:vgg16.IMAGENET1K_V1", num_classes=10)  # doctest: +SKIP
        >>> freeze(vgg, names=["features.[0-9].*"])  # doctest: +SKIP
    """
    source = source_for(name)
    if source is not None:  # e.g. "a+b": graft.hybrid (graft.models.sources)
        return source(name, num_classes=num_classes, pretrained=pretrained, in_chans=in_chans,
                      head=head, weights=weights, **kwargs)  # fmt: skip
    _check_ints(num_classes, in_chans)
    parsed = parse_name(name)
    spec = head_spec(head)
    build = _build_tv if parsed.source == "tv" else _build_timm
    model, query, first_conv = build(parsed, num_classes, in_chans, spec, kwargs)
    found, head_kept = None, False
    if pretrained or weights is not None:
        found = resolve_weights(query, explicit=weights)
        head_kept = _load_found(model, found, name, first_conv)
    if parsed.source == "tv":
        model.pretrained_cfg = tv_pretrained_cfg(parsed, found, in_chans, head_kept)
    else:
        model.pretrained_cfg = timm_pretrained_cfg(model, found, in_chans, head_kept)
    model.graft_spec = {
        "name": name,
        "num_classes": int(model.num_classes),
        "in_chans": in_chans,
        "head": spec,
        **kwargs,
    }
    return model


def no_pretrained(pretrained: Any) -> Any:
    """``create_model``'s ``pretrained`` for random weights everywhere; a per-branch mapping (a hybrid)
    keeps its keys, so a misspelt branch is still caught.

    Example:
        >>> no_pretrained({"cnn": True, "vit": False}), no_pretrained(True)
        ({'cnn': False, 'vit': False}, False)
    """
    return dict.fromkeys(pretrained, False) if isinstance(pretrained, Mapping) else False


def _load_found(model: nn.Module, found: FoundWeights, name: str, first_conv: str | None) -> bool:
    """Rename known foreign layouts, then load; True when the pretrained classifier was kept."""
    state_dict = found.state_dict
    if is_lite_layout(state_dict) and hasattr(model, "blocks"):
        state_dict = rename_efficientnet_lite(state_dict, model)
    return load_pretrained(model, state_dict, name=name, source=found.source, first_conv=first_conv)


def _check_ints(num_classes: int | None, in_chans: int) -> None:
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 0):
        raise ConfigError(
            f"num_classes must be a non-negative integer (0 = no classifier) or None, got {num_classes!r}."
        )
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(
            f"in_chans must be a positive integer (1 for grayscale, 3 for RGB), got {in_chans!r}."
        )


def _build_timm(
    parsed: ModelName, num_classes: int | None, in_chans: int, spec: dict, kwargs: dict
):
    import timm
    from timm.models import get_pretrained_cfg

    default = get_pretrained_cfg(parsed.arch)
    n = (
        num_classes
        if num_classes is not None
        else (default.num_classes if default and default.num_classes else 1000)
    )
    try:
        model = timm.create_model(
            parsed.timm_name, pretrained=False, num_classes=n, in_chans=in_chans, **kwargs
        )
    except TypeError as e:
        raise ConfigError(
            f"option not accepted by timm model '{parsed.name}': {e}. Remove it or check the timm docs for this model."
        ) from e
    except RuntimeError as e:
        if "Invalid pretrained tag" in str(e) or "Unknown" in str(e):
            raise ConfigError(
                f"{e}. List valid tags with `graft models '{parsed.arch}*'` or timm.list_pretrained('{parsed.arch}*')."
            ) from e
        raise
    _set_new_head(model, spec, n, parsed.name)
    cfg = model.pretrained_cfg
    default_tag = default.tag if default else None
    key = f"timm:{parsed.arch}" if parsed.tag in (None, default_tag) else f"timm:{parsed.timm_name}"
    cand = WeightsCandidate(key, url=cfg.get("url") or None, hf_repo=cfg.get("hf_hub_id") or None)
    return model, WeightsQuery(parsed.name, candidates=[cand]), cfg.get("first_conv")


def _set_new_head(model: nn.Module, spec: dict, num_classes: int, name: str) -> None:
    """Give a timm model a small-init head of the requested type (the classifier keeps its path)."""
    if num_classes <= 0:
        return
    if spec["type"] == "linear":
        init_head_(model.get_classifier())
        return
    in_features = head_in_features(model.get_classifier())
    if in_features is None:
        raise ConfigError(
            f"an MLP head is not available for '{name}' (its classifier is {type(model.get_classifier()).__name__}); use head='linear'."
        )
    model.set_submodule(classifier_path(model), make_head(spec, in_features, num_classes))


def _build_tv(parsed: ModelName, num_classes: int | None, in_chans: int, spec: dict, kwargs: dict):
    members = tv_weights_members(parsed)
    n = (
        num_classes
        if num_classes is not None
        else (len(members[0].meta.get("categories") or []) or 1000 if members else 1000)
    )
    if parsed.tag and parsed.arch.startswith("vit_") and "min_size" in members[0].meta:
        kwargs.setdefault("image_size", members[0].meta["min_size"][0])
    try:
        model = build_tv_model(parsed.arch, num_classes=n, in_chans=in_chans, head=spec, **kwargs)
    except TypeError as e:
        raise ConfigError(f"option not accepted by torchvision model '{parsed.name}': {e}.") from e
    if spec["type"] == "linear" and n == 1000:
        init_head_(model.get_classifier())
    cands = [WeightsCandidate(f"tv:{parsed.arch}.{w.name}", url=w.url) for w in members]
    return model, WeightsQuery(parsed.name, candidates=cands), family_of(parsed.arch).first_conv


def replace_head(
    model: nn.Module, num_classes: int, head: str | dict[str, Any] | None = None
) -> nn.Module:
    """Give ``model`` a fresh head for ``num_classes`` (small init), keeping its head type unless ``head`` is given.

    Updates ``model.graft_spec`` and drops ImageNet ``label_names`` from ``model.pretrained_cfg``.

    Example:
        >>> m = create_model("test_vit", num_classes=3, pretrained=False, head="mlp")
        >>> replace_head(m, 5).get_classifier().fc2.out_features
        5
    """
    _check_ints(num_classes, 3)
    spec = head_spec(head if head is not None else getattr(model, "graft_spec", {}).get("head"))
    if isinstance(model, TorchvisionAdapter):
        model.reset_classifier(num_classes, head=spec)
    else:
        model.reset_classifier(num_classes)
        _set_new_head(model, spec, num_classes, type(model).__name__)
    if isinstance(getattr(model, "graft_spec", None), dict):
        model.graft_spec = {**model.graft_spec, "num_classes": num_classes, "head": spec}
    if isinstance(getattr(model, "pretrained_cfg", None), dict):
        model.pretrained_cfg = {k: v for k, v in model.pretrained_cfg.items() if k != "label_names"}
    log.info("new %s head for %d classes", spec["type"], num_classes)
    return model
