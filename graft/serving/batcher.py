"""Dynamic batching: images from concurrent requests run through the model together.

The first image to arrive opens a batch; the batch closes when it holds ``max_batch_size`` images or
``timeout`` seconds after it opened, whichever comes first. One batch runs at a time, in a worker
thread, so the event loop keeps reading requests (which fill the next batch) meanwhile.

Example:
    >>> import asyncio, numpy as np, torch
    >>> async def demo():
    ...     b = Batcher(lambda x: np.asarray(x.sum(dim=1, keepdim=True)), max_batch_size=4, timeout=0.01)
    ...     b.start()
    ...     out = await asyncio.gather(*(b.submit(torch.full((2,), float(i))) for i in range(3)))
    ...     await b.stop()
    ...     return [float(o[0]) for o in out], b.batch_sizes
    >>> asyncio.run(demo())
    ([0.0, 2.0, 4.0], [3])
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import numpy as np
import torch

from graft.log import get_logger

log = get_logger("graft.serve")


class Batcher:
    """Collects tensors from :meth:`submit` calls into batches for ``run(batch) -> rows``."""

    def __init__(
        self,
        run: Callable[[torch.Tensor], np.ndarray],
        max_batch_size: int,
        timeout: float,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.run, self.max_batch_size, self.timeout = run, max_batch_size, timeout
        self.on_batch = on_batch
        self.batch_sizes: list[int] = []  # the last 1000, for tests and /info
        self._queue: asyncio.Queue[tuple[torch.Tensor, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, x: torch.Tensor) -> np.ndarray:
        """The model's output row for one preprocessed image ``x`` (``C,H,W``)."""
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((x, future))
        return await future

    async def stop(self) -> None:
        """Finish the batch in progress and the queued images, then stop."""
        if self._task is None:
            return
        while self._queue is not None and not self._queue.empty():
            await asyncio.sleep(0.005)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _loop(self) -> None:
        assert self._queue is not None  # set by start()
        while True:
            items = [await self._queue.get()]
            deadline = time.monotonic() + self.timeout
            while len(items) < self.max_batch_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    # take what is already waiting, without waiting more
                    while len(items) < self.max_batch_size and not self._queue.empty():
                        items.append(self._queue.get_nowait())
                    break
                try:
                    items.append(await asyncio.wait_for(self._queue.get(), left))
                except asyncio.TimeoutError:
                    continue
            await self._run(items)

    async def _run(self, items: list[tuple[torch.Tensor, asyncio.Future]]) -> None:
        start = time.perf_counter()
        try:
            batch = torch.stack([x for x, _ in items])
            out = await asyncio.to_thread(self.run, batch)
        except Exception as e:  # the model failed: every waiting request gets the error
            log.exception("batch of %d failed", len(items))
            for _, future in items:
                if not future.done():
                    future.set_exception(e)
            return
        self.batch_sizes = [*self.batch_sizes[-999:], len(items)]
        if self.on_batch:
            self.on_batch(len(items), time.perf_counter() - start)
        for row, (_, future) in zip(out, items, strict=True):
            if not future.done():  # a client that went away cancelled its future
                future.set_result(row)
