"""A fair, bounded queue in front of the shared LLM, and the worker threads that run behind it.

One llama.cpp model serialises its calls, so questions (and index updates, which rewrite
summaries with the LLM) run ``concurrency`` at a time. Waiting requests are queued per index
and served round-robin across indexes, first come first served within one: a burst on one
index cannot starve another. The queue is bounded overall and per index; a request that
does not fit is refused at once with :class:`~branchwise.server.errors.Busy` (HTTP 429),
never left hanging.

A slot is held until the worker thread really finishes: a client that disconnects stops
waiting for the answer, but the slot is freed only when the model call it started is done,
so the model never runs more jobs than ``concurrency``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import deque
from typing import Any, Callable, TypeVar

from branchwise.server.errors import Busy

log = logging.getLogger(__name__)

T = TypeVar("T")


class FairScheduler:
    """Run slots handed out round-robin over keys (index names), FIFO within a key.

    Args:
        concurrency: slots at most.
        max_waiting: requests waiting at most, over all keys.
        max_waiting_per_key: requests of one key waiting at most.

    All methods run on the event loop's thread (no locks needed).
    """

    def __init__(self, concurrency: int = 1, max_waiting: int = 32, max_waiting_per_key: int = 16) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.max_waiting_per_key = max_waiting_per_key
        self.running = 0
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()  # keys with waiters, in the order they are served

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def stats(self) -> dict[str, Any]:
        """Running and waiting counts (for ``/health``)."""
        return {"running": self.running, "waiting": self.waiting, "concurrency": self.concurrency,
                "max_waiting": self.max_waiting}

    async def acquire(self, key: str) -> None:
        """Wait for a slot (FIFO within ``key``, round-robin across keys).

        Raises:
            Busy: the queue (or ``key``'s share of it) is full.
        """
        if self.running < self.concurrency and not self._turns:
            self.running += 1
            return
        queue = self._queues.get(key)
        if self.waiting >= self.max_waiting or (queue is not None and len(queue) >= self.max_waiting_per_key):
            raise Busy(f"the server is busy: {self.waiting} request(s) are waiting for the model.",
                       fix="retry in a little while (see the Retry-After header).")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if queue is None:
            queue = self._queues[key] = deque()
            self._turns.append(key)
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # the slot was handed over as we were cancelled
                self.release()
            else:
                self._withdraw(key, fut)
            raise

    def release(self) -> None:
        """Free a slot and hand it to the next waiter in turn."""
        self.running -= 1
        while self.running < self.concurrency and self._turns:
            key = self._turns.popleft()
            queue = self._queues[key]
            fut = queue.popleft()
            if queue:
                self._turns.append(key)  # back of the line: the other keys go first
            else:
                del self._queues[key]
            if not fut.done():
                self.running += 1
                fut.set_result(None)

    def _withdraw(self, key: str, fut: asyncio.Future[None]) -> None:
        queue = self._queues.get(key)
        if queue is not None and fut in queue:
            queue.remove(fut)
            if not queue:
                del self._queues[key]
                self._turns.remove(key)


class JobRunner:
    """Runs blocking jobs (agent runs, index updates) in worker threads, one slot each.

    Args:
        scheduler: the queue handing out slots.
    """

    def __init__(self, scheduler: FairScheduler) -> None:
        self.scheduler = scheduler
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=scheduler.concurrency,
                                                           thread_name_prefix="branchwise-job")

    async def start(self, key: str, fn: Callable[[], T]) -> "concurrent.futures.Future[T]":
        """Wait for a slot for ``key``, then start ``fn`` in a worker; the slot is freed when
        ``fn`` returns (or raises), whatever happens to the request that started it."""
        await self.scheduler.acquire(key)
        loop = asyncio.get_running_loop()
        try:
            job = self._pool.submit(fn)
        except BaseException:
            self.scheduler.release()
            raise

        def done(_: object) -> None:
            try:
                loop.call_soon_threadsafe(self.scheduler.release)
            except RuntimeError:  # the loop is closed: the server is shutting down
                log.debug("job finished after the event loop closed")

        job.add_done_callback(done)
        return job

    async def run(self, key: str, fn: Callable[[], T]) -> T:
        """:meth:`start` ``fn`` and wait for its result."""
        return await asyncio.wrap_future(await self.start(key, fn))

    def close(self) -> None:
        """Stop accepting jobs; running ones finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
