"""Freeze and unfreeze by group index, group name or parameter-name glob, with a BatchNorm policy.

BatchNorm policy (``bn=``):
  - ``"frozen"`` (default): BatchNorm layers whose parameters are all frozen normalise with their
    running statistics and never update them, even after ``model.train()``. Mechanism: a forward
    pre-hook on each such layer sets ``layer.training = False`` just before it runs (while its
    parameters are still frozen); the model's methods are untouched, and :func:`unfreeze` removes
    the hook. Code that flips ``requires_grad`` itself should call :func:`apply_bn_policy` after.
  - ``"train"``: frozen BatchNorm layers still use and update batch statistics in train mode
    (only their affine parameters are frozen).

Example:
    >>> m = create_model("tv:vgg16.IMAGENET1K_V1", num_classes=10)  # doctest: +SKIP
    >>> freeze(m, names=["features.[0-9].*"])  # features[:10]  # doctest: +SKIP
    >>> print(trainable_summary(m))  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from torch import nn

from graft.errors import ConfigError, UnknownNameError
from graft.log import get_logger
from graft.models.groups import param_groups

log = get_logger("graft.models")
BN_POLICIES = ("frozen", "train")
_HOOK_ATTR = "_graft_bn_frozen_hook"
_POLICY_ATTR = "graft_bn_policy"


def freeze(
    model: nn.Module,
    upto: int | None = None,
    groups: Sequence[str | int] | None = None,
    names: Sequence[str] | None = None,
    bn: str = "frozen",
) -> list[str]:
    """Stop gradients for the selected parameters; return their names.

    Selectors (combine freely; none given = every group except the head):
      - ``upto=K``: the first ``K`` groups (``param_groups(model)[:K]``; ``upto=-1`` = all but the head)
      - ``groups=[...]``: group names or indices
      - ``names=[...]``: globs on parameter or module names (``"features.[0-9].*"``, ``"layer1"``)

    Example:
        >>> m = create_model("test_resnet", num_classes=3, pretrained=False)  # doctest: +SKIP
        >>> len(freeze(m, upto=2)) > 0  # doctest: +SKIP
        True
    """
    _check_policy(bn)
    selected = select_params(model, upto, groups, names, default_all_but_head=True)
    _set_requires_grad(model, selected, False)
    apply_bn_policy(model, bn)
    log.info("froze %d parameter tensors (bn=%s)", len(selected), bn)
    return selected


def unfreeze(
    model: nn.Module,
    upto: int | None = None,
    groups: Sequence[str | int] | None = None,
    names: Sequence[str] | None = None,
    bn: str | None = None,
) -> list[str]:
    """Let gradients flow again for the selected parameters (none given = all); return their names.

    Example:
        >>> unfreeze(m, groups=["layer4.0"])  # doctest: +SKIP
    """
    if bn is not None:
        _check_policy(bn)
    if upto is None and groups is None and names is None:
        selected = [n for n, _ in model.named_parameters()]
    else:
        selected = select_params(model, upto, groups, names)
    _set_requires_grad(model, selected, True)
    apply_bn_policy(model, bn or getattr(model, _POLICY_ATTR, "frozen"))
    return selected


def select_params(
    model: nn.Module,
    upto: int | None = None,
    groups: Sequence[str | int] | None = None,
    names: Sequence[str] | None = None,
    default_all_but_head: bool = False,
) -> list[str]:
    """Parameter names picked by the selectors, in model order; a selector matching nothing raises."""
    table = param_groups(model)
    chosen: set[str] = set()
    if upto is None and groups is None and names is None:
        if not default_all_but_head:
            return []
        upto = -1 if table and table[-1][0] == "head" else len(table)
    if upto is not None:
        chosen |= _by_upto(table, upto)
    if groups is not None:
        chosen |= _by_groups(table, groups)
    if names is not None:
        chosen |= _by_names(model, table, names)
    return [n for n, _ in model.named_parameters() if n in chosen]


def _by_upto(table: list[tuple[str, list[str]]], upto: int) -> set[str]:
    if not isinstance(upto, int) or isinstance(upto, bool) or not -len(table) <= upto <= len(table):
        raise ConfigError(
            f"upto={upto!r} is out of range: this model has {len(table)} groups ({_group_list(table)}); use 0..{len(table)} or a negative index."
        )
    return {n for _, members in table[:upto] for n in members}


def _by_groups(table: list[tuple[str, list[str]]], groups: Iterable[str | int]) -> set[str]:
    index = {name: i for i, (name, _) in enumerate(table)}
    out: set[str] = set()
    for g in [groups] if isinstance(groups, (str, int)) else groups:
        if isinstance(g, int) and not isinstance(g, bool) and -len(table) <= g < len(table):
            out |= set(table[g][1])
        elif isinstance(g, str) and g in index:
            out |= set(table[index[g]][1])
        else:
            from graft.errors import raise_unknown

            raise_unknown(
                "parameter group",
                str(g),
                list(index),
                hint=f"Groups in order: {_group_list(table)}.",
            )
    return out


def _by_names(
    model: nn.Module, table: list[tuple[str, list[str]]], patterns: Iterable[str]
) -> set[str]:
    params = [n for n, _ in model.named_parameters()]
    out: set[str] = set()
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        hits = {n for n in params if _name_matches(n, pattern)}
        if not hits:
            modules = sorted({n.rsplit(".", 1)[0] for n in params})
            shown = ", ".join(modules[:25]) + (
                f", ... ({len(modules)} modules)" if len(modules) > 25 else ""
            )
            raise UnknownNameError(
                f"names pattern '{pattern}' matches no parameter. Patterns are globs on parameter or module names, "
                f"e.g. 'features.[0-9].*' or 'layer1'. Modules with parameters: {shown}. Groups: {_group_list(table)}."
            )
        out |= hits
    return out


def _name_matches(param: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(param, pattern):
        return True
    parts = param.split(".")
    return any(fnmatch.fnmatchcase(".".join(parts[:k]), pattern) for k in range(1, len(parts)))


def _group_list(table: list[tuple[str, list[str]]]) -> str:
    names = [f"{i}:{name}" for i, (name, _) in enumerate(table)]
    return ", ".join(names) if len(names) <= 30 else ", ".join(names[:15] + ["..."] + names[-5:])


def _set_requires_grad(model: nn.Module, selected: Iterable[str], flag: bool) -> None:
    wanted = set(selected)
    for n, p in model.named_parameters():
        if n in wanted:
            p.requires_grad_(flag)


# -- BatchNorm policy ------------------------------------------------------------------------------
def _keep_eval(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook: a BatchNorm whose parameters are all frozen runs with its running statistics.

    Checked at every call, so code that makes the layer's parameters trainable again (without
    :func:`unfreeze`) gets batch statistics back at the next ``model.train()``.
    """
    if not any(p.requires_grad for p in module.parameters(recurse=False)):
        module.training = False


def _check_policy(bn: str) -> None:
    if bn not in BN_POLICIES:
        raise ConfigError(
            f"bn={bn!r} is not a BatchNorm policy; use one of {', '.join(BN_POLICIES)} ('frozen' keeps ImageNet statistics in frozen parts)."
        )


def is_frozen_bn(module: nn.Module) -> bool:
    """True when ``module`` is a BatchNorm layer held in eval mode by the ``frozen`` policy."""
    if getattr(module, _HOOK_ATTR, None) is None:
        return False
    return not any(p.requires_grad for p in module.parameters(recurse=False))


def apply_bn_policy(model: nn.Module, bn: str = "frozen") -> None:
    """(Re)apply the BatchNorm policy to match which parameters are frozen now."""
    if bn not in BN_POLICIES:
        raise ConfigError(
            f"bn={bn!r} is not a BatchNorm policy; use one of {', '.join(BN_POLICIES)} ('frozen' keeps ImageNet statistics in frozen parts)."
        )
    setattr(model, _POLICY_ATTR, bn)
    modules = dict(model.named_modules())
    for name, module in modules.items():
        if not isinstance(module, nn.modules.batchnorm._NormBase):
            continue
        frozen = bn == "frozen" and _bn_is_frozen(module, modules.get(name.rpartition(".")[0]))
        handle = getattr(module, _HOOK_ATTR, None)
        if frozen and handle is None:
            setattr(module, _HOOK_ATTR, module.register_forward_pre_hook(_keep_eval))
            module.training = False
        elif not frozen and handle is not None:
            handle.remove()
            setattr(module, _HOOK_ATTR, None)
            module.training = model.training


def _bn_is_frozen(module: nn.Module, parent: nn.Module | None) -> bool:
    params = list(module.parameters())
    if not params and parent is not None:  # affine=False: follow the enclosing block
        params = list(parent.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


# -- state for checkpoints -------------------------------------------------------------------------
def frozen_state(model: nn.Module) -> dict[str, object]:
    """``{"frozen": [parameter names without grad], "bn": policy}``, for checkpoints.

    Example:
        >>> set_frozen_state(other_model, frozen_state(model))  # doctest: +SKIP
    """
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    return {"frozen": frozen, "bn": getattr(model, _POLICY_ATTR, "frozen")}


def set_frozen_state(model: nn.Module, state: dict[str, object] | Iterable[str]) -> None:
    """Restore what :func:`frozen_state` returned (or a plain list of frozen parameter names)."""
    if isinstance(state, dict):
        names, bn = list(state.get("frozen", [])), str(state.get("bn", "frozen"))
    else:
        names, bn = list(state), "frozen"
    params = dict(model.named_parameters())
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ConfigError(
            f"frozen state names {len(unknown)} parameter(s) this model does not have, first: {', '.join(unknown[:5])}; was it saved from another architecture?"
        )
    wanted = set(names)
    for n, p in params.items():
        p.requires_grad_(n not in wanted)
    apply_bn_policy(model, bn)
