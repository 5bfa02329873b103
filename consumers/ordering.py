"""Which offsets may be acknowledged: in order per partition, never past unfinished work.

Commands of different keys finish in any order, but a partition's committed
offset must never pass a command whose outcome is not recorded yet, or a crash
would skip it (the flaw of Faust's ``concurrency=N``, faust-streaming #606).
``OffsetTracker`` is the rule as plain data: offsets are *received* in topic
order, *finished* in any order, and *released* (safe to acknowledge) only as an
unbroken prefix per partition.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class OffsetTracker:
    """In-order release of finished offsets, per partition."""

    def __init__(self) -> None:
        # partition -> offset -> finished?  (insertion order == topic order)
        self._pending: dict[Hashable, OrderedDict[int, bool]] = {}

    def received(self, partition: Hashable, offset: int) -> None:
        """Record that ``offset`` of ``partition`` was read and its work started."""
        pending = self._pending.setdefault(partition, OrderedDict())
        if pending and offset <= next(reversed(pending)):
            raise ValueError(f"offset {offset} of {partition!r} received out of order")
        pending[offset] = False

    def finished(self, partition: Hashable, offset: int) -> list[int]:
        """Mark ``offset`` finished; return the offsets now safe to acknowledge, in order."""
        pending = self._pending.get(partition)
        if pending is None or offset not in pending:
            raise KeyError(f"offset {offset} of {partition!r} was not received")
        pending[offset] = True
        released = []
        while pending:
            first, done = next(iter(pending.items()))
            if not done:
                break
            pending.popitem(last=False)
            released.append(first)
        return released

    def forget(self, partition: Hashable) -> int:
        """Drop a revoked partition's unfinished offsets; return how many were dropped."""
        return len(self._pending.pop(partition, {}))

    def unfinished(self, partition: Hashable | None = None) -> int:
        """How many received offsets are not released yet (in one partition, or in all)."""
        if partition is not None:
            return len(self._pending.get(partition, ()))
        return sum(len(p) for p in self._pending.values())
