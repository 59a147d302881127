"""The run reporter: how a higher layer writes ``report.html`` when ``fit`` or ``evaluate`` ends.

``graft.train`` and ``graft.inference`` sit below :mod:`graft.report` and never import it.
:mod:`graft.report` installs its writer here when it is imported; the entry points import it: the
command line (:mod:`graft.cli`) and the public ``graft.fit`` / ``graft.evaluate`` /
``graft.ImageClassifier`` / ``graft.distill_model`` (``graft/__init__.py``). A program that calls
:func:`graft.train.fit` directly gets the report after ``import graft.report`` (otherwise an info
line says it was skipped).

Example:
    >>> previous = set_run_reporter(lambda run_dir, **options: run_dir / "report.html")
    >>> write_run_report(Path("runs/pets"))
    PosixPath('runs/pets/report.html')
    >>> _ = set_run_reporter(previous)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graft.log import get_logger

log = get_logger("graft.train")

# (run_dir, *, out=None, evaluation=None) -> the page written, or None when it could not be
RunReporter = Callable[..., Path | None]

_reporter: RunReporter | None = None


def set_run_reporter(reporter: RunReporter | None) -> RunReporter | None:
    """Install ``reporter`` (``None``: none); returns the one it replaces.

    Example:
        >>> from graft.report import write_report_safely  # doctest: +SKIP
        >>> set_run_reporter(write_report_safely)  # doctest: +SKIP
    """
    global _reporter
    previous, _reporter = _reporter, reporter
    return previous


def write_run_report(run_dir: Path, **options: Any) -> Path | None:
    """The installed reporter's page for ``run_dir`` (``options``: ``out``, ``evaluation``).

    ``None`` when no reporter is installed or it could not write the page; never raises for a
    missing reporter (a report is a by-product of a finished run).
    """
    if _reporter is None:
        log.info("no run reporter installed (import graft.report); report.html skipped")
        return None
    return _reporter(Path(run_dir), **options)
