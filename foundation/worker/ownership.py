"""Which partitions this worker may still act for: a lease per delivered record, fenced at a
revocation, so that an owner that lost a partition can never call the Controller or write for it.

Every record's work runs under the *lease* of its partition, taken when the record was
delivered. A revocation (every rebalance, Faust's protocol is eager; and the stop) ends the
leases of the revoked partitions in two steps::

    VALID --revoke()--> DRAINING --drained, or the drain bound passed--> VOID

    VALID     calls and writes may start
    DRAINING  no new call may start (a retry waiting for its backoff gives up at once); a
              call whose intent is already durable is under way and is still made, and a
              record whose call started or ended may still write its outcome
    VOID      nothing may start; every later check raises ``Revoked``

``revoke()`` returns only once the work already under way has ended or the bound has
passed, and Faust lets the group hand the partition to a new owner only after that. So
the new owner never runs beside an old one: whatever the old owner had not recorded when
its lease became void is redelivered, and the journal settles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class Revoked(Exception):
    """The lease's partition was revoked: stop, record nothing, acknowledge nothing."""


class LeaseState(enum.Enum):
    VALID = "valid"
    DRAINING = "draining"
    VOID = "void"


@dataclass(frozen=True)
class Lease:
    """The right to act for one partition, as of the generation it was taken in."""

    owner: Ownership
    tp: Hashable
    generation: int

    @property
    def partition(self) -> int:
        """The partition number (where this record's table writes belong)."""
        return int(self.tp.partition)  # type: ignore[attr-defined]

    @property
    def state(self) -> LeaseState:
        return self.owner.state(self)

    def check_call(self) -> None:
        """Raise ``Revoked`` unless a new Controller call may start."""
        if self.state is not LeaseState.VALID:
            raise Revoked(self.tp)

    def check_write(self) -> None:
        """Raise ``Revoked`` unless this record may still write (valid or draining)."""
        if self.state is LeaseState.VOID:
            raise Revoked(self.tp)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise ``Revoked`` as soon as the lease stops being valid."""
        self.check_call()
        revoked = self.owner.revocation_event(self.tp)
        try:
            await asyncio.wait_for(revoked.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Revoked(self.tp)

    @contextmanager
    def working(self) -> Iterator[None]:
        """Count a record's work as under way, so that a revocation waits for it."""
        self.owner.begin_work()
        try:
            yield
        finally:
            self.owner.end_work()


class Ownership:
    """Leases per partition, their revocation, and the bounded wait for work under way.

    The wait is for all work under way, whichever partition it is for: Faust revokes every
    partition at each rebalance, so a partial revocation is no faster in practice.
    """

    def __init__(self, drain_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self._generation: dict[Hashable, int] = {}
        self._draining: dict[Hashable, int] = {}  # partition -> generation being drained
        self._revoked: dict[Hashable, asyncio.Event] = {}
        self._busy = 0
        self._idle: asyncio.Event | None = None
        self.last_drain_seconds = 0.0
        self.last_drain_left = 0

    def lease(self, tp: Hashable) -> Lease:
        """A lease for a record of ``tp`` delivered now."""
        # A record delivered while its partition drains gets a draining lease: it never runs.
        return Lease(self, tp, self._generation.setdefault(tp, 0))

    def state(self, lease: Lease) -> LeaseState:
        current = self._generation.get(lease.tp, 0)
        if lease.generation != current:
            return LeaseState.VOID
        if self._draining.get(lease.tp) == current:
            return LeaseState.DRAINING
        return LeaseState.VALID

    def revocation_event(self, tp: Hashable) -> asyncio.Event:
        event = self._revoked.get(tp)
        if event is None:
            event = self._revoked[tp] = asyncio.Event()
        return event

    @property
    def busy(self) -> int:
        """Records whose work is under way."""
        return self._busy

    def begin_work(self) -> None:
        """A record's work starts (``Lease.working`` pairs it with ``end_work``)."""
        self._busy += 1
        if self._idle is not None:
            self._idle.clear()

    def end_work(self) -> None:
        self._busy -= 1
        if self._busy == 0 and self._idle is not None:
            self._idle.set()

    async def revoke(self, tps: Iterable[Hashable] | None = None) -> int:
        """End the leases of ``tps`` (all partitions when ``None``); return the records whose
        work was still under way when the drain bound passed (0: all ended in time)."""
        revoked = list(self._generation if tps is None else tps)
        for tp in revoked:
            generation = self._generation.setdefault(tp, 0)
            self._draining[tp] = generation
            self.revocation_event(tp).set()
        started = time.monotonic()
        if self._busy:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=self.drain_seconds)
        left = self._busy
        for tp in revoked:
            if self._draining.get(tp) == self._generation[tp]:
                self._generation[tp] += 1  # VOID: nothing under the old leases may act now
            self._draining.pop(tp, None)
            self._revoked.pop(tp, None)
        self.last_drain_seconds = time.monotonic() - started
        self.last_drain_left = left
        return left
