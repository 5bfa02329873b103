"""An agent's loop with manual acknowledgements: a record is acknowledged only once its
outcome is durable, and never by an owner that lost its partition.

Each record delivered to the agent runs in two parts:

* the **head**, in delivery order, one record at a time: decode, decide, update the
  agent's in-memory view and *send* what the record causes (sends are admitted in
  order, so the records of one partition reach Kafka in delivery order);
* the **tail**, concurrently with later heads: wait for those sends' acknowledgements,
  then send what may only follow them (for the planner: the dedupe entry after its
  command), and wait again.

A record is acknowledged (its offset may be committed) once its tail has finished and
every record before it in its partition has too (``foundation.worker.ordering.InOrderAcks``). Heads
and tails run under the record's lease (``foundation.worker.ownership``): at a revocation nothing
new starts, tails under way may finish within the drain bound, and what has not finished
then is forgotten, unacknowledged, and redelivered to the next owner.

A head or tail that fails (a broker that does not acknowledge in time, a bug) stops the
worker: the record is redelivered after the restart. ``Revoked`` is not a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import faust

from foundation.worker.ordering import InOrderAcks
from foundation.worker.ownership import Lease, Ownership, Revoked

log = logging.getLogger(__name__)

Head = Callable[[faust.EventT[Any], Lease], Awaitable[Awaitable[None] | None]]
Seek = Callable[[Any, int], Awaitable[None]]

# Tails in flight per agent: bounds memory and what a revocation has to drain.
MAX_TAILS = 256


def unacked_events(stream: faust.StreamT[Any]) -> AsyncIterator[faust.EventT[Any]]:
    """An agent's events read with manual acks: Faust acknowledges none of them itself."""
    # noack() is the concrete Stream's (every agent's stream), not in Faust's StreamT type.
    events: AsyncIterator[faust.EventT[Any]] = cast(faust.Stream[Any], stream).noack().events()
    return events


class OrderedPipeline:
    """Runs an agent's stream through ``head`` and the tails it returns (see module doc)."""

    def __init__(
        self,
        name: str,
        ownership: Ownership,
        on_progress: Callable[[], None],
        on_failure: Callable[[BaseException], None],
        seek: Seek,
        max_tails: int = MAX_TAILS,
    ) -> None:
        self.name = name
        self.acks = InOrderAcks()
        self._seek = seek
        self._ownership = ownership
        self._on_progress = on_progress
        self._on_failure = on_failure
        self._room = asyncio.Semaphore(max_tails)
        self._tails: set[asyncio.Task[None]] = set()

    @property
    def unfinished(self) -> int:
        """Records delivered whose outcome is not durable yet."""
        return self.acks.unfinished

    def forget(self) -> int:
        """At the end of a revocation: drop what did not finish, unacknowledged."""
        return self.acks.forget()

    async def run(self, stream: faust.StreamT[Any], head: Head) -> None:
        """Read ``stream`` with manual acks until it ends or the worker stops."""
        try:
            async for event in unacked_events(stream):
                delivery = await delivered(self.acks, event, self._seek)
                if delivery is None:
                    continue
                lease = self._ownership.lease(event.message.tp)
                try:
                    lease.check_call()  # delivered during a revocation: leave it
                    with lease.working():
                        tail = await head(event, lease)
                except Revoked:
                    continue
                if tail is None:
                    self._finished(event, delivery)
                    continue
                await self._room.acquire()
                # Counted as work from now, so no revocation drain ends before it starts.
                self._ownership.begin_work()
                task = asyncio.create_task(self._tail(event, delivery, lease, tail))
                self._tails.add(task)
                task.add_done_callback(self._tails.discard)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failed(exc)
            raise
        finally:
            for task in list(self._tails):
                task.cancel()

    async def _tail(
        self, event: faust.EventT[Any], delivery: int, lease: Lease, tail: Awaitable[None]
    ) -> None:
        try:
            await tail
        except Revoked:
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failed(exc)
            return
        else:
            self._finished(event, delivery)
        finally:
            self._ownership.end_work()
            self._room.release()

    def _failed(self, exc: BaseException) -> None:
        log.exception('agent failed; stopping the worker agent="%s"', self.name)
        self._on_failure(exc)

    def _finished(self, event: faust.EventT[Any], delivery: int) -> None:
        self.acks.finished(event, delivery)
        self._on_progress()


async def delivered(acks: InOrderAcks, event: faust.EventT[Any], seek: Seek) -> int | None:
    """Take ``event`` into ``acks``; ``None`` when it must be dropped because records before
    it were never handed over (the partition is then sought back to the first of them)."""
    delivery = acks.received(event)
    if delivery is not None:
        return delivery
    tp = event.message.tp
    resume = acks.seek_needed(tp)
    if resume is not None:
        log.warning(
            'records were skipped; seeking back topic="%s" partition=%d offset=%d skipped_to=%d',
            tp.topic,
            tp.partition,
            resume,
            event.message.offset,
        )
        await seek(tp, resume)
    return None
