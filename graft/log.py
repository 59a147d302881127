"""graft's logger: one place to configure what reaches the terminal.

Example:
    >>> from graft.log import get_logger
    >>> get_logger("graft.models").info("head replaced")
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(levelname)s %(name)s: %(message)s"


def get_logger(name: str = "graft") -> logging.Logger:
    """Return a logger under the ``graft`` namespace."""
    return logging.getLogger(name if name.startswith("graft") else f"graft.{name}")


class _CurrentStderr(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted.

    ``logging.StreamHandler()`` keeps the ``sys.stderr`` of the moment it was made: once a notebook,
    a test runner or a server swaps or closes that stream, records from any thread fail with
    "I/O operation on closed file". (Python's own last-resort handler works this way too.)
    """

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the current one wins
        pass


def configure(verbose: int = 0, quiet: bool = False) -> None:
    """Send graft's log records to stderr: warnings by default, info with -v, debug with -vv."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    root = logging.getLogger("graft")
    if not root.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
