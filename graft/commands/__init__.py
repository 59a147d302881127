"""One module per ``graft`` sub-command; each defines ``register(subparsers)``. See :mod:`graft.cli`.

Each command's options are one dataclass (its module's ``OPTIONS``): :func:`option_classes` lists
them, so the documentation's option tables are generated from the same fields as the flags.

Example:
    >>> sorted(option_classes())[:3]
    ['data sample', 'demo', 'distill']
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def command_modules() -> dict[str, ModuleType]:
    """``{module name: module}`` of every command module under :mod:`graft.commands`."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


def option_classes() -> dict[str, type]:
    """``{command: options dataclass}`` for every ``graft`` command (``"lr-find"``, ``"data sample"``).

    Every field carries its help in ``metadata["help"]``; :func:`graft.options.help_text` states it
    with its default and :func:`graft.options.flag_name` gives its flag, as ``--help`` shows them.
    """
    out: dict[str, type] = {}
    for module in command_modules().values():
        out.update(getattr(module, "OPTIONS", {}))
    return dict(sorted(out.items()))
