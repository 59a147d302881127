"""graft's log handler follows sys.stderr: a swapped or closed stream never breaks logging."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from graft.log import configure, get_logger


@pytest.fixture
def graft_logger():
    root = logging.getLogger("graft")
    saved = (root.level, root.propagate)
    yield root
    root.level, root.propagate = saved


def test_records_go_to_the_stderr_of_the_moment(graft_logger, monkeypatch) -> None:
    # no handler yet (set here, not in a fixture: pytest attaches its capture handlers per phase)
    monkeypatch.setattr(graft_logger, "handlers", [])
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure(verbose=1)
    get_logger("graft.test").info("one")
    assert first.getvalue() == "INFO graft.test: one\n"
    first.close()  # e.g. a test runner's capture ended, or a notebook cell's stream
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("graft.test").info("two")  # a plain StreamHandler would write to the closed one
    assert second.getvalue() == "INFO graft.test: two\n"
    configure(verbose=0)  # reconfiguring keeps one handler
    assert len(graft_logger.handlers) == 1
