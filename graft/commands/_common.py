"""What every ``graft`` command shares: its parser from an options dataclass, ``--json`` output.

A command module defines ``OPTIONS`` (its dataclass) and ``register(subparsers)``, which calls
:func:`add_parser`. Results go to stdout (a human summary, or exactly one JSON document with
``--json``); everything else (logs, progress, "written to ...") goes to stderr.

Example:
    >>> import argparse
    >>> from graft.commands.stats import StatsOptions
    >>> sub = argparse.ArgumentParser().add_subparsers()
    >>> p = add_parser(sub, "stats", StatsOptions, help="h", description="d")
    >>> p.parse_args(["data/x", "--json"]).json
    True
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graft.options import add_options


def add_parser(
    subparsers: argparse._SubParsersAction,
    name: str,
    cls: type | None,
    *,
    help: str,
    description: str,
    skip: Iterable[str] = (),
    helps: dict[str, str] | None = None,
    config: bool = True,
    json_output: bool = True,
) -> argparse.ArgumentParser:
    """A sub-command parser with one argument per field of ``cls`` (plus ``--config``, ``--json``)."""
    p = subparsers.add_parser(name, help=help, description=description)
    if cls is not None:
        add_options(p, cls, skip=skip, helps=helps)
    if config:
        p.add_argument(
            "--config", help="YAML file of these options (unknown keys are rejected; flags win)"
        )
    if json_output:
        p.add_argument(
            "--json",
            action=argparse.BooleanOptionalAction,
            default=False,
            help="print the result as one JSON document on stdout (logs stay on stderr)",
        )
    return p


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """Print the result: ``data`` as JSON with ``--json``, else ``text`` (when given)."""
    stream = getattr(args, "stdout", None) or sys.stdout
    if getattr(args, "json", False):
        stream.write(json.dumps(data, indent=2, default=str) + "\n")
    elif text is not None:
        stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def note(message: str) -> None:
    """A line for the user that is not the result (stderr)."""
    print(message, file=sys.stderr)


def out_file(out: str | None, name: str, old_suffixes: tuple[str, ...]) -> Path | None:
    """``OUT/name`` for a folder ``--out``; an ``--out`` ending in one of ``old_suffixes`` is the old
    spelling (a file), still written there for one release with a warning.

    Example:
        >>> out_file("runs/stats", "stats.json", (".json",))
        PosixPath('runs/stats/stats.json')
    """
    if out is None:
        return None
    path = Path(out)
    if path.suffix.lower() in old_suffixes and not path.is_dir():
        from graft.options import warn_deprecated

        warn_deprecated(f"--out {out} (a file)", f"--out {path.with_suffix('')} (a folder: {name})")
        return path
    return path / name


def save_config(options: Any, folder: Path | str) -> None:
    """Write the resolved options as ``folder/config.yaml``, atomically."""
    from graft.config import save

    save(options, Path(folder) / "config.yaml")
