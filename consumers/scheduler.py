"""Run work strictly in order per key and concurrently across keys, with back-pressure.

``submit(key, item)`` queues ``item`` behind the earlier items of the same key;
one runner task per busy key works through its queue, and at most
``concurrency`` items run at once across all keys. ``submit`` waits while
``max_outstanding`` items are queued or running, which stops the caller from
reading more of the topic: the backlog stays in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class KeyedScheduler(Generic[T]):
    """Per-key FIFO queues drained by at most ``concurrency`` concurrent runs of ``work``."""

    def __init__(
        self,
        work: Callable[[T], Awaitable[None]],
        concurrency: int,
        max_outstanding: int | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._work = work
        self._on_failure = on_failure
        self._slots = asyncio.Semaphore(concurrency)
        self._room = asyncio.Semaphore(max_outstanding or concurrency * 4)
        self._queues: dict[Hashable, deque[T]] = {}
        self._runners: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.running = 0

    def busy(self, key: Hashable) -> bool:
        """Whether ``key`` has an item queued or running."""
        return key in self._queues

    @property
    def outstanding(self) -> int:
        """Items queued or running."""
        return sum(len(q) for q in self._queues.values())

    async def submit(self, key: Hashable, item: T) -> None:
        """Queue ``item`` after the earlier items of ``key``; wait while the scheduler is full.

        Raises the exception of a ``work`` call that failed, so the caller stops.
        """
        self._raise_failure()
        await self._room.acquire()
        self._raise_failure()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            task = asyncio.create_task(self._run_key(key, queue))
            self._runners.add(task)
            task.add_done_callback(self._runners.discard)
        queue.append(item)
        self._idle.clear()

    async def _run_key(self, key: Hashable, queue: deque[T]) -> None:
        try:
            while queue:
                async with self._slots:
                    self.running += 1
                    try:
                        await self._work(queue[0])
                    finally:
                        self.running -= 1
                queue.popleft()
                self._room.release()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception('work failed; the scheduler stops key="%s"', key)
            self._failure = exc
            if self._on_failure is not None:
                self._on_failure(exc)
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]
            if not self._queues:
                self._idle.set()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def drain(self) -> None:
        """Wait until every submitted item has run (or the first failure)."""
        await self._idle.wait()
        self._raise_failure()

    async def cancel(self) -> None:
        """Abandon queued and running items (a hard stop); their offsets stay unacknowledged."""
        for task in list(self._runners):
            task.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        self._queues.clear()
        self._idle.set()
