"""Lazy public names for packages: ``import graft`` stays fast and loads torch only when needed.

A package lists ``public name -> module that defines it`` and gets its module-level ``__getattr__``
and ``__dir__`` from :func:`lazy_exports`.

Example:
    >>> _API = {"fit": "graft.train.fitting"}
    >>> __getattr__, __dir__ = lazy_exports("graft.train", _API)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, api: Mapping[str, str], *, cache: bool = False
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` serving the names of ``api`` on first use.

    ``cache=True`` stores each resolved name on the package, so later lookups skip ``__getattr__``.

    Example:
        >>> getattr_, dir_ = lazy_exports("json", {"dumps": "json"})
        >>> getattr_("dumps")({"a": 1})
        '{"a": 1}'
    """

    def __getattr__(name: str) -> Any:
        module = api.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        if cache:
            setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *api})

    return __getattr__, __dir__


def deprecated_call(package: str, function: str, new: str) -> None:
    """Keep ``package(...)`` callable for one release: it warns and calls ``package.function``.

    ``graft.select``, ``graft.distill`` and ``graft.export`` were both functions and packages (which
    one ``graft.select`` gave depended on import order); they are packages now, and the functions are
    ``graft.select_models``, ``graft.distill_model`` and ``graft.export_model``.

    Example:
        >>> deprecated_call("graft.select", "select_models", "graft.select_models")  # doctest: +SKIP
    """
    module = sys.modules[package]

    class _CallableModule(type(module)):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            import warnings

            warnings.warn(
                f"calling {package}(...) is deprecated and will be removed in the next release; "
                f"use {new}(...) ({package} is a package)",
                FutureWarning,
                stacklevel=2,
            )
            return getattr(self, function)(*args, **kwargs)

    module.__class__ = _CallableModule
