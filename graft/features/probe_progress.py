"""Where a probe's time goes: wall seconds per named stage, and a progress bar with an ETA.

The CV search is the long part of a probe; :func:`search_bar` shows it on stderr (tqdm: fits done,
elapsed, ETA) and :class:`Stages` records each stage's wall time for the output JSON and bundle.

Example:
    >>> stages = Stages()
    >>> with stages("gram"):
    ...     _ = sum(range(1000))
    >>> list(stages.seconds)
    ['gram']
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Stages:
    """Accumulates wall seconds per stage name, in the order stages first ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + spent, 3)


def search_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` fits on stderr (only on a terminal, and only when ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="fit", disable=(not enabled) or None, leave=False)
