"""mkdocs hook: the option tables of the command pages, generated from graft's own parser.

A command page holds a placeholder such as ``<!-- options: fit -->``; at build time it is replaced
by the usage line and a table of that command's arguments and options, read from
:func:`graft.cli.build_parser` (whose flags come from each command's options dataclass), so the
page cannot drift from ``graft fit --help``. A placeholder naming no command fails the build, and
so (under ``mkdocs build --strict``) does a command without a page.

Example:
    >>> tables = render_command("fit")       # Markdown: usage, arguments, options
    >>> "| `--epochs" in tables
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import importlib
import inspect
import logging
import re
from typing import Any

# a placeholder is a line of its own, so that prose can mention one in backticks
PLACEHOLDER = re.compile(r"^<!--\s*options:\s*([\w-]+)\s*-->[ \t]*$", re.MULTILINE)
log = logging.getLogger("mkdocs.plugins.graft")


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every ``graft`` command name -> its argparse sub-parser, from :func:`graft.cli.build_parser`."""
    from graft.cli import build_parser

    return dict(_subparsers(build_parser()))


def render_command(name: str) -> str:
    """The Markdown that replaces ``<!-- options: NAME -->``: usage, arguments, options."""
    parsers = command_parsers()
    if name not in parsers:
        valid = ", ".join(sorted(parsers))
        raise KeyError(f"<!-- options: {name} -->: no graft command {name!r}; commands: {valid}")
    return _render(parsers[name], name, _dataclass_defaults(name, parsers[name]), level=0)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs event: replace each options placeholder of a page by its generated tables."""
    from mkdocs.exceptions import PluginError

    def replace(match: re.Match) -> str:
        try:
            return render_command(match.group(1))
        except KeyError as e:
            raise PluginError(f"{page.file.src_uri}: {e.args[0]}") from None

    markdown = PLACEHOLDER.sub(replace, markdown)
    if re.search(r"^<!-- api -->[ \t]*$", markdown, re.MULTILINE):
        markdown = re.sub(
            r"^<!-- api -->[ \t]*$", lambda m: render_api(), markdown, flags=re.MULTILINE
        )
    return markdown


def public_api() -> dict[str, list[str]]:
    """``graft``'s public names (``graft.__all__``), grouped by package, as mkdocstrings identifiers.

    Each name is resolved to where it is defined (``graft.fit`` -> ``graft.train.fitting.fit``), so
    the reference follows the code when a module is renamed or split.
    """
    import graft

    groups: dict[str, list[str]] = {}
    for name in graft.__all__:
        if name.startswith("_"):
            continue
        obj = getattr(graft, name)
        if inspect.ismodule(obj):  # a function shadowed by its package of the same name
            obj = getattr(importlib.import_module(graft._API[name]), name)
        module = getattr(obj, "__module__", None) or "graft"
        qualname = getattr(obj, "__qualname__", name)
        package = ".".join(module.split(".")[:2])
        groups.setdefault(package, []).append(f"{module}.{qualname}")
    return dict(sorted(groups.items()))


def render_api() -> str:
    """The ``<!-- api -->`` placeholder: a section per package, a mkdocstrings block per name."""
    parts = []
    for package, identifiers in public_api().items():
        parts.append(f"## `{package}`")
        parts += [f"::: {identifier}" for identifier in identifiers]
    return "\n\n".join(parts)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs event: warn (an error under --strict) about a command that has no page."""
    pages = {f.src_uri for f in files}
    for name in command_parsers():
        if f"commands/{name}.md" not in pages:
            log.warning(
                f"graft {name} has no page: add docs/commands/{name}.md with <!-- options: {name} -->"
            )
    return files


# -- rendering -------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _render(parser: argparse.ArgumentParser, name: str, defaults: dict, level: int) -> str:
    parts = [f"```text\n{parser.format_usage().strip()}\n```"]
    positionals, options = [], []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        (options if action.option_strings else positionals).append(action)
    if positionals:
        rows = [(f"`{a.metavar or a.dest}`", _help(parser, a)) for a in positionals]
        parts.append(_table(("argument", "what it is"), rows))
    if options:
        rows = [(_flags(a), *_help_and_default(parser, a, defaults)) for a in options]
        rows = [(flags, default, text) for flags, text, default in rows]
        parts.append(_table(("option", "default", "what it does"), rows))
    for sub_name, sub in _subparsers(parser):
        heading = "#" * (3 + level)
        parts.append(f"{heading} `graft {name} {sub_name}`\n\n{_escape(sub.description or '')}")
        parts.append(_render(sub, f"{name} {sub_name}", defaults, level + 1))
    return "\n\n".join(p for p in parts if p)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _flags(action: argparse.Action) -> str:
    metavar = ""
    if action.nargs != 0:
        if action.choices is not None and not action.metavar:
            metavar = " {" + ",".join(str(c) for c in action.choices) + "}"
        else:
            metavar = " " + str(action.metavar or action.dest.upper())
    return ", ".join(f"`{flag}{_escape(metavar, code=True)}`" for flag in action.option_strings)


STATED_DEFAULT = re.compile(r"\s*\(default:?\s*((?:[^()]|\([^()]*\))*)\)\s*$")


def _help_and_default(
    parser: argparse.ArgumentParser, action: argparse.Action, defaults: dict
) -> tuple[str, str]:
    """The help text and the default, shown once: a trailing "(default: X)" moves to its column."""
    text = _help(parser, action)
    stated = STATED_DEFAULT.search(text)
    if not stated:
        return text, _default(action, defaults)
    value = stated.group(1).strip()
    if action.nargs == 0 and value in ("True", "False"):
        value = {"True": "on", "False": "off"}[value]
    elif not value:
        return text[: stated.start()], _default(action, defaults)
    return text[: stated.start()], f"`{_escape(value, code=True)}`" if value not in (
        "on",
        "off",
    ) else value


def _default(action: argparse.Action, defaults: dict) -> str:
    value = action.default
    if value in (None, argparse.SUPPRESS) or isinstance(action, argparse._VersionAction):
        value = defaults.get(action.dest)
    if value is None or value == argparse.SUPPRESS or value in ([], {}, ()):
        return ""
    if isinstance(action, argparse._StoreTrueAction) and value is False:
        return "off"
    if isinstance(value, bool) and isinstance(action, argparse.BooleanOptionalAction):
        return "on" if value else "off"
    return f"`{_escape(str(value), code=True)}`"


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    try:
        text = parser._get_formatter()._expand_help(action) if action.help else ""
    except (KeyError, TypeError, ValueError):
        text = action.help or ""
    return _escape(" ".join(text.split()))


def _escape(text: str, code: bool = False) -> str:
    text = text.replace("|", r"\|")
    return text if code else html.escape(text, quote=False)


def _dataclass_defaults(name: str, parser: argparse.ArgumentParser) -> dict:
    """Field defaults of the options dataclasses behind a command, for flags left unset (None).

    Flags generated from a dataclass default to None so that ``--config`` YAML can fill them; the
    real default is the dataclass field's. The dataclasses are found in the parser's defaults
    (``set_defaults(options=Cls)``) and among the command module's names.
    """
    candidates = [v for v in parser._defaults.values() if dataclasses.is_dataclass(v)]
    module_name = "graft.commands." + name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
        candidates += [v for v in vars(module).values() if dataclasses.is_dataclass(v)]
    except ImportError:
        pass
    defaults: dict = {}
    for cls in candidates:
        if not isinstance(cls, type):
            continue
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults.setdefault(f.name, f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults.setdefault(f.name, f.default_factory())
    return defaults
