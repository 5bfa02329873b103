"""The stats agent: one worker's ``zone_stats`` table and the fold of each result into it.

``Stats`` holds what one worker's statistics keep between results: the table, the rows
folded but not acknowledged yet, the partitions pruned today and the metric labels. Its
``head`` is the ``fold_results`` agent's: decode a result, prune the partition's expired keys
once a day, fold, send the table writes; once Kafka acknowledged them, keep and count them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust

from foundation.worker.app import EVENTS_CONSUMED, WorkerApp, dead_letter
from foundation.worker.durable import (
    acknowledged_all,
    durable_prune,
    send_table_writes,
)
from foundation.worker.ownership import Lease
from foundation.worker.pipeline import Head
from schemas.avro import DecodeError, codec
from streams.stats.fold import (
    Change,
    apply_change,
    day_of,
    expired,
    fold_result,
    row_key,
    session_key,
)
from streams.stats.labels import MetricLabels

# The package's logger: log lines name it as they did before the package was split.
log = logging.getLogger("streams.stats")


@dataclass(frozen=True)
class Folded:
    """The table writes one result makes (session row last), and the change to count."""

    writes: list[tuple[str, Any]]
    change: Change | None


class Stats:
    """One worker's statistics: its ``zone_stats`` table, the rows folded but not
    acknowledged yet, the partitions pruned today, and its metric labels. ``register``
    builds it; the agent, the views and the zone refresh (``streams.zones``) use it."""

    def __init__(self, table: Any, labels: MetricLabels) -> None:
        # Aggregate rows and session state in one table: one changelog, whose per-partition
        # order makes a stored session row prove its aggregate rows (see the package
        # docstring). The worker's Faust table; a plain mapping in the pure fold's tests.
        self.table = table
        self.labels = labels
        self._pruned_on: dict[int, str] = {}
        # Rows folded but not acknowledged yet: the next results read them. Cleared at a
        # revocation: what was not made durable is folded again from the redelivered results.
        self._pending: dict[str, Any] = {}

    def forget_pending(self) -> None:
        """At a revocation: drop the rows not acknowledged yet."""
        self._pending.clear()

    def _current(self, key: str) -> Any:
        return self._pending[key] if key in self._pending else self.table.get(key)

    def stale_keys(self, partition: int, now: datetime) -> list[str]:
        """Once a day per partition: its expired day rows and sessions (to delete)."""
        today = day_of(now)
        if self._pruned_on.get(partition) == today:
            return []
        self._pruned_on[partition] = today
        return [
            key
            for key, value in list(self.table.items())
            if value is not None
            and value.get("partition") == partition
            and expired(key, value, now)
        ]

    def fold_event(
        self,
        result: dict[str, Any],
        partition: int,
        offset: int,
        key: str,
        now: datetime | None = None,
    ) -> Folded | None:
        """Fold one decoded result into table writes; ``None`` when nothing changes.

        Reads the table as it will be once the writes of earlier results are acknowledged.
        """
        now = now or datetime.now(UTC)
        skey = session_key(result["session_id"]) if result.get("session_id") else None
        folded = fold_result(result, partition, offset, self._current(skey) if skey else None)
        if folded is None:
            return None
        if folded.duplicate:
            log.info(
                'stats: duplicate result not counted command_id="%s" key="%s" error_code="%s"',
                result["command_id"],
                key,
                result.get("error_code") or "",
            )
            return None
        writes: list[tuple[str, Any]] = []
        change = folded.change
        counted = False
        if change is not None:
            for day in (change.day, None):
                rkey = row_key(partition, change.zone, change.vendor, day)
                new = apply_change(self._current(rkey), change, partition, offset, day, now)
                if new is not None:
                    writes.append((rkey, new))
                    counted = counted or day is None
            log.debug(
                'stats folded command_id="%s" key="%s" zone="%s" outcome="%s" error_code="%s"',
                result["command_id"],
                key,
                change.zone,
                result["outcome"],
                result.get("error_code") or "",
            )
        if folded.session is not None and skey is not None:
            # Last: it proves the rows above (the package docstring).
            writes.append((skey, folded.session))
        if not writes:
            return None
        return Folded(writes, change if counted else None)

    async def _folded_durable(self, folded: Folded, acks: list[Any]) -> None:
        """The tail of a folded result: its rows acknowledged, then kept and counted."""
        await acknowledged_all(acks)  # each row applied locally by its acknowledgement
        for key, value in folded.writes:
            if self._pending.get(key) is value:
                del self._pending[key]
        if folded.change is not None:
            self.labels.count_in_metrics(folded.change)

    def head(self, worker: WorkerApp) -> Head:
        """The stats agent's head: decode a result, prune, fold, send the table writes."""

        async def head(event: faust.EventT[Any], lease: Lease) -> Awaitable[None] | None:
            EVENTS_CONSUMED.labels("results").inc()
            message = event.message
            try:
                _, result = codec().decode(message.value, expected="ControllerResult")
            except DecodeError as exc:
                letter = dead_letter(message, "undecodable", error_message=str(exc))
                await worker.send_dead_letter(message, letter, lease)
                return None
            now = datetime.now(UTC)
            stale = self.stale_keys(message.partition, now)
            if stale:
                await durable_prune(self.table, stale, lease)
                log.info("stats pruned partition=%d keys=%d", message.partition, len(stale))
            key = message.key.decode("utf-8", "replace") if message.key else ""
            folded = self.fold_event(result, message.partition, message.offset, key, now)
            if folded is None:
                return None
            self._pending.update(folded.writes)
            acks = await send_table_writes(self.table, folded.writes, lease)
            return self._folded_durable(folded, acks)

        return head
