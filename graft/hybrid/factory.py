"""``create_hybrid``: build a :class:`HybridModel` from a ``"cnn+vit"`` name.

Each branch is created headless (``num_classes=0``) through :func:`graft.models.create_model`, so it
gets offline weights, ``tv:`` names and local files like any graft backbone. One dummy forward per
branch tells its layout (``(B, C, H, W)`` map, ``(B, H, W, C)`` map or ``(B, N, D)`` tokens) and its
feature widths; branches are keyed ``cnn`` / ``vit`` by that layout.

The hybrid's own ``pretrained_cfg`` (what the data pipeline prepares): the largest branch input size,
that branch's interpolation and crop fraction, and ``mean = 0, std = 1``, i.e. plain ``[0, 1]``
pixels. Each branch's resize and normalization happen inside the model (:class:`BranchInput`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from graft.errors import ConfigError, raise_unknown
from graft.hybrid.branch_input import BranchInput
from graft.hybrid.branch_keys import (
    by_name,
    check_kinds,
    kind_keys,
    resolve_branch_keys,
    uses_kind_keys,
)
from graft.hybrid.fusion import FUSIONS, ConcatFusion, CrossAttentionFusion, GatedFusion
from graft.hybrid.model import HybridModel
from graft.hybrid.sizes import (
    as_hw,
    describe_branch_inputs,
    fit_token_branch,
    requested_size,
    size_error,
    warn_off_size,
)
from graft.log import get_logger

log = get_logger("graft.hybrid")

DEFAULT_PROJ_DIM = (
    256  # gated / attention width when proj_dim is None (capped by the widest branch)
)
BRANCH_INPUT_KEYS = ("input_size", "interpolation", "mean", "std", "antialias")


def is_hybrid_name(name: str) -> bool:
    """True for a hybrid backbone string such as ``"resnet18+vit_small_patch16_224"``."""
    return isinstance(name, str) and "+" in name


def parse_hybrid_name(name: str) -> list[str]:
    """Split ``"a+b[+c...]"`` into branch names; at least two, none empty.

    Example:
        >>> parse_hybrid_name("efficientnet_lite0 + vit_tiny_patch16_224")
        ['efficientnet_lite0', 'vit_tiny_patch16_224']
    """
    parts = [p.strip() for p in str(name).split("+")]
    if len(parts) < 2 or any(not p for p in parts):
        raise ConfigError(
            f"hybrid name '{name}' must join two or more backbone names with '+', "
            "e.g. 'efficientnet_lite0+vit_tiny_patch16_224'."
        )
    return parts


def create_hybrid(
    name: str,
    num_classes: int | None,
    pretrained: bool | Mapping[str | int, bool] = True,
    *,
    fusion: str = "concat",
    proj_dim: int | None = None,
    attn_heads: int = 4,
    drop_rate: float = 0.0,
    in_chans: int = 3,
    head: str | dict[str, Any] | None = None,
    weights: str | os.PathLike | None = None,
    branch_kwargs: Mapping[str | int, Mapping[str, Any]] | None = None,
    branch_inputs: Mapping[str | int, Mapping[str, Any]] | None = None,
    image_size: int | Sequence[int] | None = None,
) -> HybridModel:
    """Build a hybrid of the backbones in ``name`` (joined by ``+``) with ``fusion`` and a new head.

    Args:
        name: backbone names joined by ``+`` (any name :func:`graft.models.create_model` accepts).
        num_classes: outputs of the head (0: no head, ``forward`` returns the fused features).
            ``None`` (``create_model``'s "keep the pretrained head") means 0: a hybrid has no
            pretrained head.
        pretrained: load each branch's pretrained weights; a mapping decides per branch (e.g. a CNN
            with shipped weights and a randomly initialised ViT: ``{"cnn": True, "vit": False}``).
            Per-branch mappings (here, ``branch_kwargs`` and ``branch_inputs``) are keyed by branch
            name as written in ``name``, position (``0``, ``"1"``) or kind (``cnn``/``vit``,
            ``cnn2``... when a kind repeats); see :mod:`graft.hybrid.branch_keys`. A branch left
            out of ``pretrained`` loads its weights.
        fusion: ``"concat"``, ``"gated"`` or ``"attention"`` (one CNN branch + one token branch).
        proj_dim: common width the branches are projected to (concat: optional; gated/attention:
            default ``min(256, widest branch)``).
        attn_heads: attention heads (reduced to a divisor of ``proj_dim`` if needed).
        drop_rate: dropout before the head.
        in_chans: input channels, passed to every branch.
        head: ``"linear"`` (default), ``"mlp"`` or ``{"type": "mlp", "hidden": 512, "dropout": 0.2}``.
        weights: a ``.safetensors`` / tensors-only ``.pth`` state dict of the whole hybrid (e.g. from
            an earlier run), loaded after the branches; a classifier of another size is dropped.
            Per-branch files go in ``branch_kwargs``: ``{"vit_tiny_patch16_224": {"weights": PATH}}``.
        branch_kwargs: per branch, extra arguments for its ``create_model`` (e.g.
            ``{"vit_tiny_patch16_224": {"img_size": 64}}``).
        branch_inputs: per branch, overrides of its preprocessing: ``input_size`` (int or
            ``[h, w]``), ``interpolation``, ``mean``, ``std``, ``antialias``. Defaults come from the
            branch's ``pretrained_cfg`` (``img_size`` in ``branch_kwargs`` sets the size too).
        image_size: the size every branch computes at (``graft fit --image-size``), unless that
            branch has its own ``input_size`` / ``img_size`` above. CNNs take any size; ViTs are
            resized (position embeddings interpolated) to a multiple of their patch size. See
            :mod:`graft.hybrid.sizes` for the rule and :func:`graft.hybrid.branch_input_sizes`.

    Example:
        >>> model = create_hybrid("test_efficientnet+test_vit", num_classes=3, pretrained=False,
        ...                       fusion="gated", branch_kwargs={"test_vit": {"img_size": 32}})
        >>> model(torch.rand(2, 3, 160, 160)).shape
        torch.Size([2, 3])
        >>> model = create_hybrid("test_efficientnet+test_vit", num_classes=3,
        ...                       pretrained={"cnn": False, "vit": False},
        ...                       branch_kwargs={"vit": {"img_size": 32}})
        >>> model.branch_names
        {'cnn': 'test_efficientnet', 'vit': 'test_vit'}
        >>> model = create_hybrid("test_efficientnet+test_vit", num_classes=3, pretrained=False,
        ...                       image_size=64)
        >>> [tuple(p.size) for p in model.inputs.values()]
        [(64, 64), (64, 64)]
    """
    names = parse_hybrid_name(name)
    if num_classes is None:
        log.info(
            "hybrid %s has no pretrained head: num_classes=None gives fused features (0)", name
        )
        num_classes = 0
    _check_options(fusion, proj_dim, num_classes)
    wants = _per_branch_pretrained(names, pretrained)
    kwargs = _per_branch_dicts(names, branch_kwargs, "branch_kwargs")
    overrides = _per_branch_dicts(names, branch_inputs, "branch_inputs")
    for n, cfg in zip(names, overrides, strict=True):
        for key in cfg:
            if key not in BRANCH_INPUT_KEYS:
                raise_unknown(f"branch_inputs key for {n}", str(key), BRANCH_INPUT_KEYS)

    if image_size is not None:
        image_size = as_hw(image_size)
    built = [
        _build_branch(n, w, in_chans, kw, ov, image_size)
        for n, w, kw, ov in zip(names, wants, kwargs, overrides, strict=True)
    ]
    layouts = [b["layout"] for b in built]
    check_kinds(names, layouts, uses_kind_keys(names, [pretrained, branch_kwargs, branch_inputs]))
    kinds = ["vit" if lay == "tokens" else "cnn" for lay in layouts]
    for key, b in zip(kind_keys(kinds), built, strict=True):
        b["key"] = key
    fusion_module = _build_fusion(fusion, built, proj_dim, attn_heads)
    model = HybridModel(
        branches={b["key"]: b["model"] for b in built},
        inputs={b["key"]: b["input"] for b in built},
        layouts={b["key"]: b["layout"] for b in built},
        fusion=fusion_module,
        num_classes=num_classes,
        drop_rate=drop_rate,
        head=head,
    )
    model.branch_names = {b["key"]: b["name"] for b in built}
    model.branch_size_rules = {b["key"]: b["rule"] for b in built}
    if weights is not None:
        _load_hybrid_weights(model, weights, name)
    _set_pretrained_cfg(model, built, in_chans)
    model.graft_spec = {
        "name": "+".join(names),
        "num_classes": int(num_classes),
        "fusion": fusion,
        "proj_dim": proj_dim,
        "attn_heads": int(attn_heads),
        "drop_rate": float(drop_rate),
        "in_chans": int(in_chans),
        "image_size": list(image_size) if image_size is not None else None,
        "head": dict(model.head_cfg),
        "branch_kwargs": by_name(names, [copy.deepcopy(kw) or None for kw in kwargs]),
        "branch_inputs": by_name(names, [b["input"].config() for b in built]),
    }
    warn_off_size([(b["name"], b["input"].size, b["rule"]) for b in built], image_size)
    log.info(
        "hybrid %s: branch inputs %s; fusion=%s, %d features",
        name,
        describe_branch_inputs(model),
        fusion,
        model.num_features,
    )
    return model


# ------------------------------------------------------------------------------------- checks


def _check_options(fusion: str, proj_dim: int | None, num_classes: int) -> None:
    if fusion not in FUSIONS:
        raise_unknown(
            "fusion", str(fusion), FUSIONS, hint="Pass fusion='concat', 'gated' or 'attention'."
        )
    if proj_dim is not None and (not isinstance(proj_dim, int) or proj_dim < 1):
        raise ConfigError(f"proj_dim must be a positive integer or None, got {proj_dim!r}")
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(
            f"num_classes must be an integer >= 0 for a hybrid (it has no pretrained head), got "
            f"{num_classes!r}; pass the number of classes, or 0 for fused features."
        )


def _per_branch_pretrained(names: Sequence[str], pretrained: Any) -> list[bool]:
    if not isinstance(pretrained, Mapping):
        return [bool(pretrained)] * len(names)
    values = resolve_branch_keys(names, pretrained, "pretrained")
    for n, v in zip(names, values, strict=True):
        if v is not None and not isinstance(v, bool):
            raise ConfigError(f"pretrained for branch {n} must be true or false, got {v!r}.")
    return [True if v is None else v for v in values]


def _per_branch_dicts(names: Sequence[str], mapping: Any, what: str) -> list[dict[str, Any]]:
    if mapping is None:
        return [{} for _ in names]
    values = resolve_branch_keys(names, mapping, what)
    for n, v in zip(names, values, strict=True):
        if v is not None and not isinstance(v, Mapping):
            raise ConfigError(
                f"{what} for branch {n} must be a mapping of options, got {type(v).__name__} {v!r}."
            )
    return [dict(v or {}) for v in values]


# ------------------------------------------------------------------------------------ branches


def _load_hybrid_weights(model: HybridModel, path: str | os.PathLike, name: str) -> None:
    from graft.models.loading import load_pretrained
    from graft.models.weights import read_state_dict

    load_pretrained(model, read_state_dict(path), name=name, source=str(path))
    log.info("hybrid %s: weights loaded from %s", name, path)


def create_branch(
    name: str, pretrained: bool, in_chans: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    """A headless backbone (``num_classes=0``) through graft's model registry."""
    try:
        from graft.models import create_model
    except ImportError:  # graft.models not importable yet: plain timm backbones
        import timm

        return timm.create_model(
            name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **dict(kwargs)
        )
    return create_model(
        name, num_classes=0, pretrained=pretrained, in_chans=in_chans, **dict(kwargs)
    )


def _build_branch(
    name: str,
    pretrained: bool,
    in_chans: int,
    kwargs: dict[str, Any],
    override: dict[str, Any],
    image_size: tuple[int, int] | None,
) -> dict[str, Any]:
    if is_hybrid_name(name):
        raise ConfigError(f"a hybrid branch cannot itself be a hybrid: got '{name}'")
    model = create_branch(name, pretrained, in_chans, kwargs)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    size, rule = requested_size(override, kwargs, image_size, cfg)
    if rule == "branch_inputs" and size == image_size:
        rule = "image_size"  # e.g. rebuilt from a bundle's spec: the size the user asked for
    fit_token_branch(name, model, size, rule)
    mean, std = (
        _channels(override.get("mean", cfg.get("mean", (0.5,) * 3)), in_chans),
        _channels(override.get("std", cfg.get("std", (0.5,) * 3)), in_chans),
    )
    prep = BranchInput(
        size,
        override.get("interpolation", cfg.get("interpolation") or "bilinear"),
        mean,
        std,
        antialias=bool(override.get("antialias", False)),
    )
    layout, pooled_dim, token_dim = _probe(name, model, in_chans, prep.size, rule)
    return {
        "name": name,
        "model": model,
        "input": prep,
        "rule": rule,
        "layout": layout,
        "pooled_dim": pooled_dim,
        "token_dim": token_dim,
        "crop_pct": float(cfg.get("crop_pct", 0.875)),
    }


def _channels(values: Sequence[float], in_chans: int) -> list[float]:
    values = [float(v) for v in values]
    if len(values) == in_chans:
        return values
    return [sum(values) / len(values)] * in_chans  # e.g. grayscale input to RGB statistics


@torch.no_grad()
def _probe(
    name: str, model: nn.Module, in_chans: int, size: tuple[int, int], rule: str
) -> tuple[str, int, int]:
    """One dummy forward: the layout of ``forward_features`` and the pooled and token widths."""
    was_training = model.training
    model.eval()
    try:
        feat = model.forward_features(torch.zeros(1, in_chans, *size))
        pooled = model.forward_head(feat, pre_logits=True)
    except Exception as e:  # noqa: BLE001 - report any failure with the branch and size
        raise size_error(name, size, rule, e) from e
    finally:
        model.train(was_training)
    if pooled.ndim != 2:
        raise ConfigError(f"branch '{name}' pools to shape {tuple(pooled.shape)}, expected (B, D)")
    return (
        _layout(name, model, feat),
        int(pooled.shape[-1]),
        _token_dim(feat, _layout(name, model, feat)),
    )


def _layout(name: str, model: nn.Module, feat: torch.Tensor) -> str:
    if feat.ndim == 3:
        return "tokens"
    if feat.ndim == 4:
        fmt = str(getattr(model, "output_fmt", "")).upper()
        if fmt == "NHWC":
            return "nhwc"
        return "nchw"
    raise ConfigError(
        f"branch '{name}' returns forward_features of shape {tuple(feat.shape)}; a hybrid needs a "
        "(B, C, H, W) map or (B, N, D) tokens."
    )


def _token_dim(feat: torch.Tensor, layout: str) -> int:
    return int(feat.shape[1] if layout == "nchw" else feat.shape[-1])


# -------------------------------------------------------------------------------------- fusion


def _build_fusion(
    fusion: str, built: Sequence[dict], proj_dim: int | None, attn_heads: int
) -> nn.Module:
    pooled = [b["pooled_dim"] for b in built]
    width = proj_dim or min(DEFAULT_PROJ_DIM, max(pooled))
    if fusion == "concat":
        return ConcatFusion(pooled, proj_dim)
    if fusion == "gated":
        return GatedFusion(pooled, width)
    layouts = [b["layout"] for b in built]
    if len(built) != 2 or sorted(lay == "tokens" for lay in layouts) != [False, True]:
        found = ", ".join(
            f"{b['name']} ({'tokens' if b['layout'] == 'tokens' else 'map'})" for b in built
        )
        raise ConfigError(
            f"fusion='attention' needs exactly one CNN (spatial map) and one token branch (ViT); got "
            f"{found}. Use fusion='concat' or 'gated' for other combinations."
        )
    cnn = next(b for b in built if b["layout"] != "tokens")
    tok = next(b for b in built if b["layout"] == "tokens")
    return CrossAttentionFusion(cnn["token_dim"], tok["token_dim"], width, attn_heads)


def _set_pretrained_cfg(model: HybridModel, built: Sequence[dict], in_chans: int) -> None:
    main = max(built, key=lambda b: b["input"].size[0] * b["input"].size[1])
    height = max(b["input"].size[0] for b in built)
    width = max(b["input"].size[1] for b in built)
    model.pretrained_cfg.update(
        {
            "input_size": (in_chans, height, width),
            "interpolation": main["input"].interpolation,
            "crop_pct": main["crop_pct"],
            "mean": (0.0,) * in_chans,
            "std": (1.0,) * in_chans,
            "num_classes": model.num_classes,
            "architecture": "+".join(b["name"] for b in built),
            "branches": {b["key"]: {"name": b["name"], **b["input"].config()} for b in built},
        }
    )
