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
from collections.abc import Callable, Hashable, Iterable
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
    unbroken prefix of finished ones per partition (``DeliveryTracker``).

    It also makes sure no record is skipped. Faust hands a record over once per fetch
    position and drops records at or below the last offset it handed over
    (``Consumer._read_offset``); after a revocation the records this worker forgot
    (unfinished, so unacknowledged) are handed over again only if Faust seeks back, and
    when that seek fails (``IllegalStateError`` during a rebalance, seen here) the later
    records come first: acknowledging them would commit past the forgotten ones, which
    would then never be applied. So a record that arrives after a gap (an offset later
    than the one expected next, later than a forgotten one, or, first after an assignment,
    later than the partition's committed offset) is not taken: ``received``
    returns ``None`` and the caller seeks the partition back to ``resume_point(tp)``.
    """

    def __init__(self) -> None:
        self._tracker = DeliveryTracker()
        self._events: dict[int, Any] = {}
        self._next: dict[Hashable, int] = {}  # offset expected next, per partition
        self._resume: dict[Hashable, int] = {}  # forgotten or skipped: hand over from here
        self._sought: dict[Hashable, int] = {}  # the resume point a seek was asked for
        # The partition's committed offset (``WorkerApp.track`` wires Faust's): the first
        # record handed over after an assignment must not lie past it.
        self.committed: Callable[[Hashable], int | None] = lambda tp: None

    def received(self, event: Any) -> int | None:
        """Record a delivered event; return its delivery id, or ``None`` when records before
        it were never handed over (seek back to ``resume_point`` and drop this one)."""
        tp, offset = event.message.tp, event.message.offset
        resume = self._resume.get(tp)
        if resume is not None:
            if offset > resume:
                return None
            del self._resume[tp]
            self._sought.pop(tp, None)
        expected = self._next.get(tp)
        if expected is None:
            expected = self.committed(tp)
        if expected is not None and offset > expected:
            self._resume[tp] = expected  # offsets expected..offset-1 never came
            return None
        self._next[tp] = offset + 1
        delivery = self._tracker.received(tp)
        self._events[delivery] = event
        return delivery

    def resume_point(self, tp: Hashable) -> int | None:
        """The offset ``tp`` must be handed over from again (``None``: nothing skipped)."""
        return self._resume.get(tp)

    def seek_needed(self, tp: Hashable) -> int | None:
        """The offset to seek ``tp`` back to, once per gap (``None``: already asked, or none)."""
        resume = self._resume.get(tp)
        if resume is None or self._sought.get(tp) == resume:
            return None
        self._sought[tp] = resume
        return resume

    def finished(self, event: Any, delivery: int) -> None:
        """Its outcome is recorded: acknowledge it and every finished one before it.

        A delivery forgotten at a revocation is ignored: it is not ours to acknowledge.
        """
        if not self.holds(event, delivery):
            return
        for done in self._tracker.finished(event.message.tp, delivery):
            self._events.pop(done).ack()

    def forget(self) -> int:
        """At the end of a revocation: drop every unfinished delivery, unacknowledged, and
        expect each of their partitions to be handed over again from the first of them."""
        for event in self._events.values():
            tp, offset = event.message.tp, event.message.offset
            self._resume[tp] = min(offset, self._resume.get(tp, offset))
        self._events.clear()
        self._sought.clear()  # a new assignment: ask again
        self._next.clear()  # a new assignment: Faust may start anywhere at or before them
        return self._tracker.forget()

    def retain(self, assigned: Iterable[Hashable]) -> None:
        """After an assignment: partitions now owned elsewhere are not waited for."""
        kept = set(assigned)
        for tp in [tp for tp in self._resume if tp not in kept]:
            del self._resume[tp]
            self._sought.pop(tp, None)

    def holds(self, event: Any, delivery: int) -> bool:
        """True while ``delivery`` of ``event`` is tracked (not forgotten at a revocation)."""
        return self._events.get(delivery) is event

    @property
    def unfinished(self) -> int:
        return self._tracker.unfinished()

    def in_hand(self, tp: Hashable) -> int:
        """Deliveries of ``tp`` not released yet (handed over, outcome not recorded)."""
        return self._tracker.unfinished(tp)
