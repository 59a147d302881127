"""Command-line flags generated from :class:`FitConfig` (``graft fit``, ``lr-find``, ``distill``).

A thin layer over :mod:`graft.options` with :class:`FitConfig` as the default dataclass. Flags that
are not given stay unset, so a ``--config`` YAML file and the defaults fill them.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(); add_config_flags(p)
    >>> options_from_args(p.parse_args(["--epochs", "3", "--no-flip"]))
    {'flip': False, 'epochs': 3}
"""

from __future__ import annotations

import argparse
from typing import Any

from graft.options import add_options, key_value
from graft.train.config import FitConfig

__all__ = ["add_config_flags", "key_value", "options_from_args"]


def add_config_flags(
    parser: Any,
    skip: tuple[str, ...] = ("data",),
    cls: type = FitConfig,
    helps: dict[str, str] | None = None,
) -> None:
    """Add one flag per field of the config dataclass ``cls`` (default: unset) to ``parser``.

    ``parser`` is an ``ArgumentParser`` or one of its argument groups; ``helps`` replaces the help
    text of the named fields (see :func:`graft.options.add_options`).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_config_flags(p, helps={"epochs": "student epochs"})
        >>> [a.help for a in p._actions if a.dest == "epochs"]
        ['student epochs']
    """
    add_options(parser, cls, skip=skip, helps=helps)


def options_from_args(args: argparse.Namespace, *classes: type) -> dict[str, Any]:
    """The fields of ``classes`` (default: :class:`FitConfig`) given on the command line, ``data`` aside.

    Example:
        >>> options_from_args(argparse.Namespace(data="x", epochs=3, lr=None, verbose=False))
        {'epochs': 3}
    """
    from graft.options import options_from_args as _given

    out = _given(args, *(classes or (FitConfig,)))
    out.pop("data", None)
    return out
