"""Typed configuration: dataclasses filled from YAML and CLI flags, unknown keys rejected.

Each command defines a dataclass of its options. :func:`from_dict` builds it from a mapping and refuses
unknown keys (with a suggestion), :func:`load` merges a YAML file with explicit overrides, and
:func:`save` writes the resolved config next to the outputs.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 1e-3
    ...     epochs: int = 5
    >>> from_dict(Opt, {"lr": "0.01"})
    Opt(lr=0.01, epochs=5)
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from graft.errors import ConfigError, suggest
from graft.io import write_text

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping of option names to values, got {type(data).__name__}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k.replace("-", "_") not in fields]
    if unknown:
        key = unknown[0]
        close = suggest(key.replace("-", "_"), fields)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: unknown key '{key}'.{hint} Valid keys: {', '.join(fields)}.")
    kwargs = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        kwargs[name] = _coerce(value, hints[name], f"{where}.{name}")
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A plain dict (YAML/JSON-ready) of a dataclass instance."""
    return _plain(dataclasses.asdict(obj))


def load(
    cls: type[T], path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> T:
    """Read YAML ``path`` (optional) into ``cls``; ``overrides`` (e.g. CLI flags that were set) win."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(path)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(cls, data, where=str(path) if path else "options")


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load`` (never constructs arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass the path of a YAML file.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write the resolved config (a dataclass) as YAML, atomically."""
    write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        if tp is type(None) or type(None) in args or tp is Any:
            return None
        raise ConfigError(f"{where}: a value is required")
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            close = suggest(str(value), [str(a) for a in args])
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: {value!r} is not one of {', '.join(map(str, args))}.{hint}"
            )
        return value
    if origin in (list, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(items)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, where)
    return _coerce_scalar(value, tp, where)


def _coerce_scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    try:
        if tp is bool:
            return _to_bool(value)
        if tp in (int, float, str):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from e
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj
