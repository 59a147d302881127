"""Parameter groups, ordered stem -> head, from the model's own ``group_matcher``.

Group ``K`` counts from the stem (0); the classifier is always the last group, named ``head``.
Names are the dotted prefix the group's parameters share (``blocks.2.1``, ``layer3``), else
``stem`` / ``group{K}``.

Example:
    >>> m = create_model("test_resnet", num_classes=3, pretrained=False)  # doctest: +SKIP
    >>> [name for name, _ in param_groups(m)]  # doctest: +SKIP
    ['stem', 'layer1.0', 'layer2.0', 'layer3.0', 'layer4.0', 'head']
"""

from __future__ import annotations

from torch import nn

from graft.errors import ConfigError


def param_groups(model: nn.Module, coarse: bool = False) -> list[tuple[str, list[str]]]:
    """``[(group_name, [parameter names]), ...]`` ordered from the stem to the head.

    Example:
        >>> param_groups(create_model("tv:resnet18", num_classes=2, pretrained=False))[-1]  # doctest: +SKIP
        ('head', ['fc.weight', 'fc.bias'])
    """
    from timm.models._manipulate import group_with_matcher

    if not hasattr(model, "group_matcher"):
        raise ConfigError(
            f"{type(model).__name__} has no group_matcher(); build models with graft.create_model."
        )
    names = [n for n, _ in model.named_parameters()]
    grouped = group_with_matcher(((n, None) for n in names), model.group_matcher(coarse=coarse))
    head = set(_classifier_params(model))
    groups = [[n for n in members if n not in head] for _, members in sorted(grouped.items())]
    groups = [g for g in groups if g]
    named = _name_groups(groups, names)
    if head:
        named.append(("head", [n for n in names if n in head]))
    return named


def _classifier_params(model: nn.Module) -> list[str]:
    if not hasattr(model, "get_classifier"):
        return []
    ids = {id(p) for p in model.get_classifier().parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def _name_groups(groups: list[list[str]], all_names: list[str]) -> list[tuple[str, list[str]]]:
    """Name each group by the largest modules it covers completely (``layer1.0``, ``blocks.5.0+conv_head``)."""
    totals = _prefix_counts(all_names)
    out: list[tuple[str, list[str]]] = []
    used: set[str] = set()
    for i, members in enumerate(groups):
        modules = _covering_modules(members, totals)
        name = (
            "stem"
            if i == 0 and len(modules) > 1
            else "+".join(modules[:3]) + ("+..." if len(modules) > 3 else "")
        )
        if name in used or name == "head":
            name = f"{name}#{i}"
        used.add(name)
        out.append((name, members))
    return out


def _prefixes(param: str) -> list[str]:
    parts = param.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))] or [param]


def _prefix_counts(params) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in params:
        for prefix in _prefixes(p):
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def _covering_modules(members: list[str], totals: dict[str, int]) -> list[str]:
    inside = _prefix_counts(members)
    found: list[str] = []
    for p in members:
        prefix = next((q for q in _prefixes(p) if inside[q] == totals[q]), p)
        if prefix not in found:
            found.append(prefix)
    return found
