"""graft's logger: one place to configure what reaches the terminal.

Example:
    >>> from graft.log import get_logger
    >>> get_logger("graft.models").info("head replaced")
"""

from __future__ import annotations

import logging

_FORMAT = "%(levelname)s %(name)s: %(message)s"


def get_logger(name: str = "graft") -> logging.Logger:
    """Return a logger under the ``graft`` namespace."""
    return logging.getLogger(name if name.startswith("graft") else f"graft.{name}")


def configure(verbose: int = 0, quiet: bool = False) -> None:
    """Send graft's log records to stderr: warnings by default, info with -v, debug with -vv."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    root = logging.getLogger("graft")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
