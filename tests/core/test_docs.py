"""The documentation site: a page per command, option tables generated from the parser, a strict build.

The fast tests load ``docs/hooks.py`` (the mkdocs hook that renders the tables) directly; the slow
one runs ``mkdocs build --strict`` when mkdocs is installed (``make setup`` installs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("graft_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def parsers(hooks) -> dict[str, argparse.ArgumentParser]:
    return hooks.command_parsers()


def test_every_command_has_a_page_with_an_options_placeholder(parsers, hooks):
    assert {"fit", "predict", "evaluate", "extract", "data", "lr-find"} <= set(parsers)
    missing, without_placeholder = [], []
    for name in parsers:
        page = DOCS / "commands" / f"{name}.md"
        if not page.is_file():
            missing.append(str(page.relative_to(ROOT)))
        elif name not in hooks.PLACEHOLDER.findall(page.read_text()):
            without_placeholder.append(str(page.relative_to(ROOT)))
    assert not missing, f"commands without a docs page: {missing}"
    assert not without_placeholder, f"pages without <!-- options: NAME -->: {without_placeholder}"


def test_every_command_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in (DOCS / "commands").glob("*.md"))
    assert pages, "no command pages"
    assert [p for p in pages if p not in nav] == []


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [
        flag
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for flag in action.option_strings
    ]


def test_generated_table_lists_every_flag_of_the_command(hooks, parsers):
    for name, parser in parsers.items():
        table = hooks.render_command(name)
        absent = [flag for flag in _flags(parser) if f"`{flag}" not in table]
        assert not absent, f"graft {name}: flags missing from the docs table: {absent}"
        options = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
        assert table.count("\n| `--") >= len(options) - 1, name  # -h is not listed


def test_nested_commands_get_a_table_per_action(hooks):
    table = hooks.render_command("data")
    assert "`graft data sample`" in table
    assert "`--per-class PER_CLASS`" in table
    assert "| `name` |" in table


def test_stated_default_moves_to_the_default_column_once(hooks):
    parser = argparse.ArgumentParser(prog="graft x")
    parser.add_argument("--size", type=int, default=None, help="input size (default: the weights')")
    parser.add_argument("--seed", type=int, default=3, help="random seed")
    parser.add_argument(
        "--flip", action=argparse.BooleanOptionalAction, help="flip (default: True)"
    )
    parser.add_argument("--tta", action="store_true", help="mirror | average")
    rows = {line.split(" | ")[0]: line for line in hooks._render(parser, "x", {}, 0).splitlines()}
    assert rows["| `--size SIZE`"] == "| `--size SIZE` | `the weights'` | input size |"
    assert rows["| `--seed SEED`"] == "| `--seed SEED` | `3` | random seed |"
    assert rows["| `--flip`, `--no-flip`"].endswith("| on | flip |")
    assert rows["| `--tta`"] == r"| `--tta` | off | mirror \| average |"


def test_unknown_command_in_a_placeholder_is_an_error(hooks):
    with pytest.raises(KeyError, match="no graft command 'fitt'"):
        hooks.render_command("fitt")


def test_placeholder_must_be_a_line_of_its_own(hooks):
    text = "Mention `<!-- options: fit -->` inline.\n\n<!-- options: demo -->\n"

    class Page:
        class file:
            src_uri = "x.md"

    out = hooks.on_page_markdown(text, Page, None, None)
    assert out.startswith("Mention `<!-- options: fit -->` inline.")
    assert "usage: graft demo" in out and "usage: graft fit" not in out


def test_api_reference_names_every_public_name(hooks):
    import graft

    identifiers = [i for group in hooks.public_api().values() for i in group]
    assert len(identifiers) == len([n for n in graft.__all__ if not n.startswith("_")])
    assert "graft.train.fitting.fit" in identifiers
    for identifier in identifiers:  # each resolves to the object graft exports under that name
        module, _, name = identifier.rpartition(".")
        assert re.fullmatch(r"graft(\.\w+)+", module), identifier


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mkdocs") is None and not Path(sys.executable).with_name("mkdocs").exists(),
                    reason="mkdocs is not installed (make setup installs it)")  # fmt: skip
def test_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs) if mkdocs.exists() else "mkdocs", "build", "--strict"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [*command, "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fit = (tmp_path / "site" / "commands" / "fit" / "index.html").read_text()
    assert "--batch-size" in fit and "<table>" in fit
