"""Which deliveries may be acknowledged: in order per partition, never past unfinished work.

Commands of different keys finish in any order, but a partition's committed
offset must never pass a command whose outcome is not recorded yet, or a crash
would skip it (the flaw of Faust's ``concurrency=N``, faust-streaming #606).
``DeliveryTracker`` is the rule as plain data: deliveries are *received* in the
order the consumer hands them over, *finished* in any order, and *released*
(safe to acknowledge) only as an unbroken prefix, per partition.

A delivery is one hand-over of a record, not an offset: after a rebalance the
consumer seeks back to the committed offset and hands over records this worker
already holds. Such a repeat is a new delivery behind the original; the journal
recognises its command and skips it.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any


class DeliveryTracker:
    """In-order release of finished deliveries, per partition."""

    def __init__(self) -> None:
        # partition -> delivery id -> finished?  (insertion order == hand-over order)
        self._pending: dict[Hashable, OrderedDict[int, bool]] = {}
        self._ids = itertools.count()

    def received(self, partition: Hashable) -> int:
        """Record a delivery from ``partition``; return its id."""
        delivery = next(self._ids)
        self._pending.setdefault(partition, OrderedDict())[delivery] = False
        return delivery

    def finished(self, partition: Hashable, delivery: int) -> list[int]:
        """Mark ``delivery`` finished; return the deliveries now safe to acknowledge, in order."""
        pending = self._pending.get(partition)
        if pending is None or delivery not in pending:
            raise KeyError(f"delivery {delivery} of {partition!r} was not received")
        pending[delivery] = True
        released = []
        while pending:
            first, done = next(iter(pending.items()))
            if not done:
                break
            pending.popitem(last=False)
            released.append(first)
        return released

    def forget(self, partitions: Iterable[Hashable] | None = None) -> int:
        """Drop every unreleased delivery of ``partitions`` (all when ``None``), unacknowledged:
        at a revocation they are redelivered to the next owner. Returns how many."""
        chosen = list(self._pending) if partitions is None else list(partitions)
        return sum(len(self._pending.pop(p, ())) for p in chosen)

    def unfinished(self, partition: Hashable | None = None) -> int:
        """How many deliveries are not released yet (in one partition, or in all)."""
        if partition is not None:
            return len(self._pending.get(partition, ()))
        return sum(len(p) for p in self._pending.values())


class InOrderAcks:
    """Faust events read with manual acks (``stream.noack()``), acknowledged only as an
    unbroken prefix of finished ones per partition (``DeliveryTracker``)."""

    def __init__(self) -> None:
        self._tracker = DeliveryTracker()
        self._events: dict[int, Any] = {}

    def received(self, event: Any) -> int:
        """Record a delivered event; return its delivery id."""
        delivery = self._tracker.received(event.message.tp)
        self._events[delivery] = event
        return delivery

    def finished(self, event: Any, delivery: int) -> None:
        """Its outcome is recorded: acknowledge it and every finished one before it.

        A delivery forgotten at a revocation is ignored: it is not ours to acknowledge.
        """
        if not self.holds(event, delivery):
            return
        for done in self._tracker.finished(event.message.tp, delivery):
            self._events.pop(done).ack()

    def forget(self, partitions: Iterable[Hashable] | None = None) -> int:
        """Drop the unfinished deliveries of ``partitions`` (all: ``None``), unacknowledged."""
        chosen = set(self._tracker._pending) if partitions is None else set(partitions)
        for delivery, event in list(self._events.items()):
            if event.message.tp in chosen:
                del self._events[delivery]
        return self._tracker.forget(chosen)

    def holds(self, event: Any, delivery: int) -> bool:
        """True while ``delivery`` of ``event`` is tracked (not forgotten at a revocation)."""
        return self._events.get(delivery) is event

    @property
    def unfinished(self) -> int:
        return self._tracker.unfinished()
