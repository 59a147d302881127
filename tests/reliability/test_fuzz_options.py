"""Every command, every option, a small set of hostile values: the answer is exit 2 with one error
line, never a traceback.

The options are discovered from the real parser, so a new command or flag is fuzzed without
editing this file. Positional data arguments point at a path that does not exist, so no command
does real work: each run ends at the option checks, the config checks or the first data check
(whichever comes first), which is what a user with a typo meets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from .conftest import TINY_EXTRACT, TINY_FIT, CliResult, clean_folder, run_cli

MISSING = "/nonexistent/graft-fuzz"
NUMBERS = ("0", "-1", "999999999999", "nan", "abc")
# commands that run without a positional argument: only values the parser must refuse are sent
NO_POSITIONAL_VALUES = ("abc",)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from graft.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _positionals(sub: argparse.ArgumentParser) -> list[str]:
    """A missing path for each positional argument (the ``data`` command takes a sub-command)."""
    args = []
    for a in sub._actions:
        if a.option_strings:
            continue
        if a.choices:  # a nested sub-command: take its first one
            args.append(sorted(a.choices)[0])
        elif a.nargs != "?":
            args.append(MISSING)
    return args


def _numeric_cases() -> list[tuple[str, str, str]]:
    cases = []
    for name, sub in _subparsers().items():
        positional = _positionals(sub)
        values = NUMBERS if MISSING in positional else NO_POSITIONAL_VALUES
        for a in sub._actions:
            if a.option_strings and a.type in (int, float):
                cases += [(name, a.option_strings[0], v) for v in values]
    return cases


def assert_one_error_line(r: CliResult) -> None:
    """Exit 2, no traceback, exactly one ``error:`` line (argparse adds its usage lines above)."""
    assert not r.traceback, str(r)
    assert r.code == 2, str(r)
    errors = [line for line in r.err.splitlines() if ": error: " in line]
    assert len(errors) == 1, str(r)


CASES = _numeric_cases()


def test_the_fuzz_covers_every_command_with_numeric_options():
    covered = {c for c, _, _ in CASES}
    assert {"fit", "extract", "predict", "evaluate", "probe", "distill", "lr-find"} <= covered
    assert len(CASES) > 300


@pytest.mark.parametrize("command", sorted({c for c, _, _ in CASES}))
def test_numeric_options_never_trace_back(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default --out folders land here (and are removed on failure)
    sub = _subparsers()[command]
    positional = _positionals(sub)
    for _, flag, value in [c for c in CASES if c[0] == command]:
        r = run_cli(command, *positional, flag, value)
        assert_one_error_line(r)
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())  # no half-made output folders


# ---------------------------------------------------------------------- with real, cheap data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_folder(tmp_path_factory.mktemp("fuzz") / "data", per_class=4)


def _out_values(tmp: Path, data: Path) -> dict[str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    file = tmp / "a-file.csv"
    file.write_text("x")
    return {"file": file, "uncreatable": file / "below-a-file", "unwritable": Path("/proc/graft/x"),
            "inside-data": data / "out"}  # fmt: skip


@pytest.mark.parametrize("where", ["file", "uncreatable", "unwritable", "inside-data"])
def test_fit_out_that_cannot_work(data, tmp_path, where):
    out = _out_values(tmp_path, data)[where]
    r = run_cli("fit", data, *TINY_FIT, "--epochs", "1", "--out", out)
    assert_one_error_line(r)
    assert not (data / "out").exists()


@pytest.mark.parametrize("where", ["file", "uncreatable", "unwritable", "inside-data"])
def test_extract_out_that_cannot_work(data, tmp_path, where):
    out = _out_values(tmp_path, data)[where]
    r = run_cli("extract", data, *TINY_EXTRACT, "--out", out)
    assert_one_error_line(r)
    assert not (data / "out").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--recipe", "full", "--freeze-upto", "3"],
        ["--recipe", "head", "--unfreeze", "2:+2"],
        ["--epochs", "0"],
        ["--workers", "-1"],
        ["--image-size", "100000"],
        ["--batch-size", "0"],
        ["--config", MISSING],
    ],
    ids=lambda f: " ".join(f),
)
def test_fit_mistakes_are_one_line_with_the_fix(data, tmp_path, flags):
    r = run_cli("fit", data, *TINY_FIT, *flags, "--out", tmp_path / "run")
    assert_one_error_line(r)
    assert not (tmp_path / "run").exists()
