"""Per-branch option keys of a hybrid: a branch name, its position, or its kind (``cnn`` / ``vit``).

``create_hybrid("efficientnet_lite0+vit_tiny_patch16_224", pretrained=...)`` takes per-branch
mappings (``pretrained``, ``branch_kwargs``, ``branch_inputs``) keyed in any of three ways:

- the backbone name as written in the hybrid name: ``{"vit_tiny_patch16_224": False}``;
- the branch position, as an int or a digit string (YAML/JSON keys): ``{1: False}``, ``{"1": False}``;
- the branch key the model uses in its parameter names: ``cnn`` / ``vit`` (``cnn2``, ``vit2``, ...
  when a kind repeats, numbered in name order).

Kinds are decided before any branch is built (``pretrained`` decides how a branch is built), from the
name: :data:`TOKEN_MODELS` matches ViT-like families. :func:`check_kinds` compares that guess with
the layout each built branch really returns, so a wrong guess is an error, never a silent mix-up.

Example:
    >>> resolve_branch_keys(["test_efficientnet", "test_vit"], {"cnn": True, "vit": False}, "pretrained")
    [True, False]
    >>> resolve_branch_keys(["test_efficientnet", "test_vit"], {1: {"img_size": 32}}, "branch_kwargs")
    [None, {'img_size': 32}]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from graft.errors import ConfigError, raise_unknown

# families whose forward_features returns (B, N, D) tokens; everything else is taken for a CNN map
TOKEN_MODELS = re.compile(
    r"vit|deit|beit|eva|swin|cait|xcit|levit|mvit|dino|pit_|tnt_|crossvit", re.IGNORECASE
)


def guess_kind(name: str) -> str:
    """``"vit"`` for a ViT-like backbone name, else ``"cnn"`` (a guess from the name alone).

    Example:
        >>> guess_kind("vit_small_patch16_224"), guess_kind("tv:resnet18")
        ('vit', 'cnn')
    """
    return "vit" if TOKEN_MODELS.search(name) else "cnn"


def kind_keys(kinds: Sequence[str]) -> list[str]:
    """Branch keys for branch kinds in order: ``cnn``, ``vit``, then ``cnn2``, ``vit2``, ...

    Example:
        >>> kind_keys(["cnn", "cnn", "vit"])
        ['cnn', 'cnn2', 'vit']
    """
    keys, seen = [], {}
    for kind in kinds:
        seen[kind] = seen.get(kind, 0) + 1
        keys.append(kind if seen[kind] == 1 else f"{kind}{seen[kind]}")
    return keys


def valid_keys(names: Sequence[str]) -> list[str]:
    """Every key accepted for the branches ``names``: names, positions and kind keys."""
    kinds = kind_keys([guess_kind(n) for n in names])
    return list(dict.fromkeys([*names, *map(str, range(len(names))), *kinds]))


def resolve_branch_keys(names: Sequence[str], mapping: Any, what: str) -> list[Any]:
    """``mapping`` keyed by branch name / position / kind -> one value per branch (``None``: unset).

    A key that names no branch raises :class:`graft.errors.UnknownNameError` with suggestions; two
    keys for the same branch (e.g. ``cnn`` and its name) raise :class:`graft.errors.ConfigError`.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"{what} must be a mapping from branch to value, e.g. {{'cnn': ..., 'vit': ...}}, "
            f"got {type(mapping).__name__} {mapping!r}."
        )
    values: list[Any] = [None] * len(names)
    given: list[str | None] = [None] * len(names)
    for key, value in mapping.items():
        i = _index(names, key, what)
        if given[i] is not None:
            raise ConfigError(
                f"{what} gives branch {i} ({names[i]}) twice, as '{given[i]}' and '{key}'; "
                "keep one of the two keys."
            )
        values[i], given[i] = value, str(key)
    return values


def by_name(names: Sequence[str], values: Sequence[Any]) -> dict[Any, Any]:
    """Per-branch values keyed by branch name (by position when a name repeats), unset ones left out.

    Example:
        >>> by_name(["a", "b"], [None, {"img_size": 32}])
        {'b': {'img_size': 32}}
    """
    unique = len(set(names)) == len(names)
    return {
        (n if unique else str(i)): v
        for i, (n, v) in enumerate(zip(names, values, strict=True))
        if v is not None
    }


def check_kinds(names: Sequence[str], layouts: Sequence[str], used_kind_keys: bool) -> None:
    """After building: the name-based kinds must match the real layouts when kind keys were used."""
    if not used_kind_keys:
        return
    guessed = [guess_kind(n) for n in names]
    real = ["vit" if lay == "tokens" else "cnn" for lay in layouts]
    wrong = [f"{n} (taken for a {g}, is a {r})" for n, g, r in zip(names, guessed, real, strict=True)
             if g != r]  # fmt: skip
    if wrong:
        raise ConfigError(
            f"per-branch keys cnn/vit were matched to branches by name, but {', '.join(wrong)}. "
            f"Key the options by branch name or position instead, e.g. {{'{names[-1]}': ...}} "
            f"or {{{len(names) - 1}: ...}}."
        )


def uses_kind_keys(names: Sequence[str], mappings: Sequence[Any]) -> bool:
    """True when any of ``mappings`` has a ``cnn``/``vit``-style key that is not also a name."""
    kinds = set(kind_keys([guess_kind(n) for n in names])) - set(names)
    return any(isinstance(m, Mapping) and any(str(k) in kinds for k in m) for m in mappings)


def _index(names: Sequence[str], key: Any, what: str) -> int:
    text = str(key).strip()
    if text in names:
        if names.count(text) > 1:
            raise ConfigError(
                f"{what} key '{text}' matches {names.count(text)} branches of the hybrid "
                f"{'+'.join(names)}; key them by position instead (0 .. {len(names) - 1})."
            )
        return list(names).index(text)
    if text.isdigit():
        i = int(text)
        if i < len(names):
            return i
    kinds = kind_keys([guess_kind(n) for n in names])
    if text in kinds:
        return kinds.index(text)
    raise_unknown(
        f"branch key in {what}",
        text,
        valid_keys(names),
        hint=f"Key per-branch options by backbone name, position (0 .. {len(names) - 1}) or "
        f"kind ({', '.join(kinds)}) of the hybrid {'+'.join(names)}.",
    )
    raise AssertionError("unreachable")  # raise_unknown always raises
