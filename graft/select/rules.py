"""Rules of thumb as data: match a dataset profile and the user's constraints against ``rules.yaml``.

Rules filter candidates (``exclude``) and order which are measured first (``prefer``/``avoid``), and
every match leaves a note saying why. They never decide the final ranking: that comes from scores
measured on the user's images (see :mod:`graft.select.api`).

Example:
    >>> rules = load_rules()
    >>> advice = rules.advise({"latency_budget_ms": 20}, ["vit_base_patch16_224", "mobilenetv3_small_100"])
    >>> [a.name for a in advice]
    ['mobilenetv3_small_100', 'vit_base_patch16_224']
    >>> advice[0].notes[0].startswith("real_time:")
    True
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from graft.errors import ConfigError

OPERATORS = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "in": lambda a, b: a in b,
}
RULE_KEYS = {"id", "when", "prefer", "avoid", "exclude", "reason"}
CONTEXT_KEYS = {
    "n_images",
    "n_classes",
    "images_per_class_min",
    "images_per_class_median",
    "imbalance",
    "resolution",
    "grayscale_share",
    "detail",
    "latency_budget_ms",
    "device",
}
CANDIDATE_KEYS = {"params_m", "input_px", "family"}


@dataclass(frozen=True)
class Rule:
    """One row of the table: conditions, effects and the reason shown to the user."""

    id: str
    when: dict[str, dict[str, Any]]
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    exclude: dict[str, dict[str, Any]] = field(default_factory=dict)
    reason: str = ""

    def matches(self, context: Mapping[str, Any]) -> bool:
        """True when every condition holds; a condition on a missing value never holds."""
        return _all_hold(self.when, context)

    def explain(self, context: Mapping[str, Any]) -> str:
        """The reason with ``{field}`` placeholders filled from ``context``."""
        try:
            text = self.reason.format(**{k: v for k, v in context.items() if v is not None})
        except (KeyError, ValueError, IndexError):
            text = self.reason
        return f"{self.id}: {' '.join(text.split())}"


@dataclass
class Advice:
    """What the rules say about one candidate: its family, priority, notes, and exclusion if any."""

    name: str
    family: str | None
    priority: int = 0
    notes: list[str] = field(default_factory=list)
    excluded: str | None = None


@dataclass(frozen=True)
class RuleSet:
    """Families (glob patterns) and rules, loaded from YAML by :func:`load_rules`."""

    families: dict[str, tuple[str, ...]]
    rules: tuple[Rule, ...]

    def family_of(self, name: str) -> str | None:
        """The first family whose pattern matches ``name`` (case-insensitive), else None."""
        low = name.lower()
        for family, patterns in self.families.items():
            if any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns):
                return family
        return None

    def matching(self, context: Mapping[str, Any]) -> list[Rule]:
        """The rules whose conditions hold for ``context``."""
        return [r for r in self.rules if r.matches(context)]

    def advise(
        self,
        context: Mapping[str, Any],
        candidates: Iterable[str],
        facts: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Advice]:
        """Advice per candidate, ordered by priority (stable: ties keep the given order).

        ``facts`` maps a candidate to measured facts (``params_m``, ``input_px``) used by
        ``exclude`` conditions; without them exclusions are not decided.
        """
        facts = facts or {}
        matched = self.matching(context)
        out = []
        for name in candidates:
            advice = Advice(name, self.family_of(name))
            for rule in matched:
                _apply(rule, advice, context, {**facts.get(name, {}), "family": advice.family})
            out.append(advice)
        return sorted(out, key=lambda a: -a.priority)


def _apply(
    rule: Rule, advice: Advice, context: Mapping[str, Any], facts: Mapping[str, Any]
) -> None:
    if rule.exclude and _all_hold(rule.exclude, facts):
        advice.excluded = rule.explain({**context, **facts})
        return
    if advice.family in rule.prefer:
        advice.priority += 1
        advice.notes.append(f"{rule.explain(context)} (prefers {advice.family})")
    elif advice.family in rule.avoid:
        advice.priority -= 1
        advice.notes.append(f"{rule.explain(context)} (avoids {advice.family})")
    elif not rule.prefer and not rule.avoid and not rule.exclude:
        advice.notes.append(rule.explain(context))


def _all_hold(conditions: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> bool:
    for key, tests in conditions.items():
        value = values.get(key)
        if value is None:
            return False
        for op, bound in tests.items():
            try:
                if not OPERATORS[op](value, bound):
                    return False
            except TypeError:
                return False
    return True


def load_rules(path: str | os.PathLike | None = None) -> RuleSet:
    """Load and validate a rules table (default: graft's ``rules.yaml``); mistakes raise ConfigError.

    Example:
        >>> sorted(load_rules().families)[:3]
        ['convnext', 'densenet', 'efficientnet']
    """
    if path is None:
        text = resources.files("graft.select").joinpath("rules.yaml").read_text(encoding="utf-8")
        where = "graft/select/rules.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read rules file {path}: {e.strerror or e}") from e
        where = os.fspath(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"rules file {where} is not valid YAML: {e}") from e
    return parse_rules(raw, where)


def parse_rules(raw: Any, where: str = "rules") -> RuleSet:
    """Validate a rules table already parsed from YAML (see ``rules.yaml`` for the format)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise ConfigError(f"{where}: expected a mapping with 'families' and a 'rules' list.")
    families = {
        str(k): tuple(_strings(v, f"{where}: family {k}"))
        for k, v in raw.get("families", {}).items()
    }
    rules = tuple(_parse_rule(r, i, where, set(families)) for i, r in enumerate(raw["rules"]))
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{where}: rule ids must be unique; repeated: {', '.join(dupes)}.")
    return RuleSet(families, rules)


def _parse_rule(raw: Any, index: int, where: str, families: set[str]) -> Rule:
    if not isinstance(raw, dict) or "id" not in raw:
        raise ConfigError(f"{where}: rule #{index + 1} must be a mapping with an 'id'.")
    label = f"{where}: rule '{raw['id']}'"
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise ConfigError(f"{label}: unknown keys {sorted(unknown)}; valid: {sorted(RULE_KEYS)}.")
    prefer, avoid = _strings(raw.get("prefer", []), label), _strings(raw.get("avoid", []), label)
    bad = sorted(set(prefer + avoid) - families)
    if bad:
        raise ConfigError(f"{label}: unknown families {bad}; defined: {sorted(families)}.")
    return Rule(
        id=str(raw["id"]),
        when=_conditions(raw.get("when", {}), CONTEXT_KEYS, label),
        prefer=tuple(prefer),
        avoid=tuple(avoid),
        exclude=_conditions(raw.get("exclude", {}), CANDIDATE_KEYS, label),
        reason=str(raw.get("reason", "")),
    )


def _conditions(raw: Any, keys: set[str], label: str) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: conditions must be a mapping like {{detail: {{gte: 0.1}}}}.")
    out = {}
    for key, tests in raw.items():
        if key not in keys:
            raise ConfigError(f"{label}: unknown condition '{key}'; valid: {sorted(keys)}.")
        if not isinstance(tests, dict) or not set(tests) <= set(OPERATORS):
            raise ConfigError(
                f"{label}: condition '{key}' needs operators from {sorted(OPERATORS)}; got {tests!r}."
            )
        out[key] = dict(tests)
    return out


def _strings(value: Any, label: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{label}: expected a list of names, got {value!r}.")
    return value
