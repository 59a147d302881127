"""Parameter groups of a hybrid: each branch's own groups, prefixed by the branch's name.

A backbone's ``group_matcher`` (timm's format: group name -> regex, or a list of ``(regex, suffix)``)
names parameters relative to the backbone. Inside a hybrid they live under ``branches.<key>.``, so
every regex is re-anchored there and each group is renamed ``<key>.<group>``. Parameters of a
branch that its own matcher leaves out (timm sends them to the head) join that branch's last group.
Then come ``fusion`` and ``head``, so group index 0 is the first branch's stem and the head is last.

Example:
    >>> prefix_matcher("cnn", {"stem": r"^conv1|bn1", "blocks": r"^layer(\\d+)"})["cnn.stem"]
    '^branches\\\\.cnn\\\\.(?:conv1|bn1)'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MATCH_PREV_GROUP = (99999,)  # timm's marker: "belongs to the previous group"

# a '^' that starts the pattern or an alternative / group: redundant under re.match, wrong once prefixed
_ANCHOR = re.compile(r"(^|(?<!\\)\||(?<!\\)\((?:\?:)?)\^")


def _strip_anchors(pattern: str) -> str:
    return _ANCHOR.sub(r"\1", pattern)


def _prefixed(prefix: str, pattern: str) -> str:
    return f"{prefix}(?:{_strip_anchors(pattern)})"


def prefix_matcher(key: str, matcher: Mapping[str, Any] | Callable | None) -> dict[str, Any]:
    """Re-anchor a branch's ``group_matcher`` under ``branches.<key>.`` with ``<key>.``-prefixed names."""
    prefix = rf"^branches\.{re.escape(key)}\."
    if not isinstance(matcher, Mapping) or not matcher:
        return {key: prefix}  # no usable matcher: the branch is one group
    out: dict[str, Any] = {}
    for name, spec in matcher.items():
        if spec is None:
            continue
        if isinstance(spec, (list, tuple)):
            out[f"{key}.{name}"] = [(_prefixed(prefix, rx), suffix) for rx, suffix in spec]
        else:
            out[f"{key}.{name}"] = _prefixed(prefix, spec)
    last = next(reversed(out))
    spec = out[last]
    entries = list(spec) if isinstance(spec, list) else [(spec, None)]
    out[last] = [*entries, (prefix, MATCH_PREV_GROUP)]  # leftovers join the branch's last group
    return out


def hybrid_matcher(branch_matchers: Mapping[str, Any]) -> dict[str, Any]:
    """The hybrid's ``group_matcher``: branches in order, then ``fusion``, then ``head``."""
    out: dict[str, Any] = {}
    for key, matcher in branch_matchers.items():
        out.update(prefix_matcher(key, matcher))
    out["fusion"] = r"^fusion\."
    out["head"] = r"^head\."
    return out
