"""Errors for user mistakes: each says what was received, what is valid and how to fix it.

The CLI prints a :class:`GraftError` as one clear message (no traceback); anything else is a bug.

Example:
    >>> raise_unknown("model", "resnt18", ["resnet18", "resnet34"])
    Traceback (most recent call last):
    ...
    graft.errors.UnknownNameError: unknown model 'resnt18'. Did you mean: resnet18? ...
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GraftError(Exception):
    """Base class for errors caused by input the user can fix."""


class ConfigError(GraftError, ValueError):
    """A configuration value or key is invalid."""


class DataError(GraftError, ValueError):
    """A dataset, image or label file cannot be used as given."""


class UnknownNameError(GraftError, KeyError, ValueError):
    """A name (model, layer, group, option) that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(GraftError, FileNotFoundError):
    """No pretrained weights could be found offline for a model."""


class UnsafeFileError(GraftError, ValueError):
    """A file would need code execution (pickle) to load, or failed its checksum."""


def suggest(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` close matches of ``name`` among ``valid`` (difflib)."""
    return difflib.get_close_matches(name, list(valid), n=n, cutoff=0.5)


def raise_unknown(kind: str, name: str, valid: Iterable[str], hint: str = "") -> None:
    """Raise :class:`UnknownNameError` with close matches and a short list of valid names."""
    valid = sorted(set(valid))
    close = suggest(name, valid)
    msg = f"unknown {kind} '{name}'."
    if close:
        msg += f" Did you mean: {', '.join(close)}?"
    shown = ", ".join(valid[:20]) + (f", ... ({len(valid)} in all)" if len(valid) > 20 else "")
    msg += f" Valid: {shown}." if valid else ""
    if hint:
        msg += f" {hint}"
    raise UnknownNameError(msg)
