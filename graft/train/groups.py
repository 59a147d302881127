"""A model's parameter groups (stem -> head), resolved once by parameter name.

``ModelGroups`` wraps ``graft.models.param_groups(model)`` and adds what training needs: which group
a parameter or a BatchNorm layer belongs to, and parsing of group selections such as ``blocks.4-6``
(a numbered range of group names), ``+2`` (two more groups below the trainable ones) or ``all``.

Example:
    >>> import timm
    >>> groups = ModelGroups.of(timm.create_model("test_efficientnet", num_classes=3))
    >>> groups.names[0], groups.names[-1]
    ('stem', 'head')
    >>> groups.select("blocks.1-2")
    [2, 3]
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from torch import nn

from graft.errors import ConfigError, raise_unknown

_RANGE = re.compile(r"^(?P<prefix>.*?)(?P<lo>\d+)-(?P<hi>\d*)$")


@dataclass(frozen=True)
class ModelGroups:
    """Ordered groups: ``names[i]`` and ``params[i]`` (parameter names) for group ``i``; head last."""

    names: tuple[str, ...]
    params: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, model: nn.Module) -> ModelGroups:
        """Groups of ``model`` from :func:`graft.models.param_groups` (timm's group matcher)."""
        named = _param_groups(model)
        return cls(tuple(n for n, _ in named), tuple(tuple(p) for _, p in named))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def head(self) -> int:
        """Index of the head group (the last one)."""
        return len(self.names) - 1

    def group_of(self) -> dict[str, int]:
        """Parameter name -> group index."""
        return {p: i for i, ps in enumerate(self.params) for p in ps}

    def select(self, spec: str) -> list[int]:
        """Group indices for a comma-free selection: ``all``, ``head``, a name, a glob, or ``name.A-B``."""
        spec = spec.strip()
        if spec == "all":
            return list(range(len(self)))
        if spec == "head":
            return [self.head]
        if spec in self.names:
            return [self.names.index(spec)]
        match = _RANGE.match(spec)
        if match:
            return self._select_range(spec, match)
        hits = [i for i, n in enumerate(self.names) if fnmatch.fnmatchcase(n, spec)]
        if not hits:
            raise_unknown(
                "parameter group", spec, self.names, "Ranges look like 'blocks.2-4' or 'blocks.5-'."
            )
        return hits

    def _select_range(self, spec: str, match: re.Match) -> list[int]:
        prefix, lo = match["prefix"], int(match["lo"])
        hi = int(match["hi"]) if match["hi"] else None
        hits = []
        for i, name in enumerate(self.names):
            rest = name[len(prefix) :] if name.startswith(prefix) else ""
            number = re.match(r"\d+", rest)
            if number and int(number.group()) >= lo and (hi is None or int(number.group()) <= hi):
                hits.append(i)
        if not hits:
            raise ConfigError(
                f"group range '{spec}' matches no parameter group. Groups are: {', '.join(self.names)}."
            )
        return hits

    def bn_groups(self, model: nn.Module) -> dict[str, int]:
        """BatchNorm module name -> group index (by its parameters, else by its name prefix)."""
        owner = self.group_of()
        out = {}
        for name, module in model.named_modules():
            if not isinstance(module, nn.modules.batchnorm._BatchNorm):
                continue
            own = [
                owner[f"{name}.{p}"]
                for p, _ in module.named_parameters(recurse=False)
                if f"{name}.{p}" in owner
            ]
            out[name] = own[0] if own else self._by_prefix(name, owner)
        return out

    def _by_prefix(self, module: str, owner: dict[str, int]) -> int:
        best, index = -1, 0
        for param, i in owner.items():
            common = len(_common_prefix(param, module))
            if common > best:
                best, index = common, i
        return index


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _joined_modules(params: list[str]) -> str:
    """'blocks.4.0+conv_head+bn2' for a group whose parameters share no prefix."""
    mods: list[str] = []
    for p in params:
        parts = p.split(".")[:-1]
        mod = ".".join(parts[:-1] if len(parts) > 1 else parts)
        if mod not in mods:
            mods.append(mod)
    return "+".join(mods)


def _param_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    try:
        from graft.models import param_groups
    except ImportError:
        return _timm_groups(model)
    return [(str(n), list(ps)) for n, ps in param_groups(model)]


def _timm_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Groups from timm's fine ``group_matcher``, named after their common module prefix."""
    from timm.models import group_parameters

    grouped = group_parameters(model, model.group_matcher(coarse=False))
    named = []
    keys = sorted(grouped)
    for k in keys:
        params = list(grouped[k])
        prefix = params[0]
        for p in params[1:]:
            prefix = _common_prefix(prefix, p)
        name = prefix.rsplit(".", 1)[0].rstrip(".") if "." in prefix else ""
        named.append((name or _joined_modules(params), params))
    named[0] = ("stem", named[0][1]) if len(keys) > 1 else named[0]
    named[-1] = ("head", named[-1][1])
    return named
