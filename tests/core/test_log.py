"""graft's log handler follows sys.stderr: a swapped or closed stream never breaks logging."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from graft.log import configure, get_logger


@pytest.fixture
def fresh_graft_logger():
    root = logging.getLogger("graft")
    saved = (root.handlers[:], root.level, root.propagate)
    root.handlers.clear()
    yield root
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def test_records_go_to_the_stderr_of_the_moment(fresh_graft_logger, monkeypatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure(verbose=1)
    get_logger("graft.test").info("one")
    first.close()  # e.g. a test runner's capture ended, or a notebook cell's stream
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("graft.test").info("two")  # a plain StreamHandler would write to the closed one
    assert second.getvalue() == "INFO graft.test: two\n"
    configure(verbose=0)  # reconfiguring keeps one handler
    assert len(fresh_graft_logger.handlers) == 1
