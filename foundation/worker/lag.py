"""Consumer lag per partition: ``parkstream_consumer_lag{topic,partition}``.

Every ``LAG_INTERVAL_SECONDS`` the worker asks the broker for the high watermark of each
parkstream partition it is assigned and subtracts the group's committed offset: the
records waiting in Kafka, including those read but whose outcome is not recorded yet
(the dispatcher commits only past recorded outcomes). A partition never committed counts
from its earliest offset (the group starts there). Partitions no longer assigned drop
out of the gauge, so a rebalance does not leave a stale series behind.

The same refresh hands over again a partition that is stuck (``Refetch``): records wait
after its committed offset, none is in the worker's hands or its stream's queue, and the
committed offset has not moved for a third of ``PARKSTREAM_WORKER_STALL_SECONDS``. Faust
can fetch records and never hand them over: its ``Consumer.getmany`` drops the rest of a
fetched batch when the group's generation changes while it hands the batch over, and the
fetch position is then past them (seen here after two rebalances in quick succession: a
partition assigned, fetching, 1,311 records waiting, nothing handed over). Seeking such a
partition back to its committed offset hands them over again; a repeat of a record already
applied is skipped by the journal. Should that not help, the stall watchdog still ends the
worker (``foundation/worker/watchdog.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterable

from prometheus_client import Counter, Gauge

from foundation.settings import TOPICS, Settings
from foundation.worker.app import WorkerApp

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0
# A refresh fails now and then (a rebalance under way); this many in a row is a WARNING.
FAILURES_REPORTED = 3

CONSUMER_LAG = Gauge(
    "parkstream_consumer_lag",
    "Records in a partition the worker owns that it has not consumed yet.",
    ["topic", "partition"],
)


REFETCHES = Counter(
    "parkstream_partition_refetches_total",
    "Partitions handed over again from their committed offset: records waited there and "
    "none was handed over for a third of PARKSTREAM_WORKER_STALL_SECONDS.",
    ["topic"],
)


class Refetch:
    """Which partitions are stuck and must be handed over again (pure; the clock injected).

    Stuck: records wait after the committed offset, none is busy (in an agent's hands or
    in its stream's queue), and the committed offset has not moved for ``after_seconds``.
    A stuck partition is refetched at most once per ``after_seconds``.
    """

    def __init__(self, after_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.after_seconds = after_seconds
        self._clock = clock
        self._still: dict[Hashable, tuple[int | None, float]] = {}  # tp -> (committed, since)

    def stuck(self, tp: Hashable, waiting: int, committed: int | None, busy: bool) -> bool:
        now = self._clock()
        if waiting <= 0 or busy:
            self._still.pop(tp, None)
            return False
        seen = self._still.get(tp)
        if seen is None or seen[0] != committed:
            self._still[tp] = (committed, now)
            return False
        if now - seen[1] < self.after_seconds:
            return False
        self._still[tp] = (committed, now)
        return True

    def retain(self, tps: Iterable[Hashable]) -> None:
        """Forget partitions no longer assigned."""
        kept = set(tps)
        for tp in [tp for tp in self._still if tp not in kept]:
            del self._still[tp]


def short_names(settings: Settings) -> dict[str, str]:
    """Full topic name -> the short name used as the label (table changelogs are left out)."""
    return {settings.topic(name): name for name in TOPICS}


def partition_lag(highwater: int | None, committed: int | None, earliest: int | None) -> int | None:
    """Records after the committed offset (or after ``earliest`` when nothing is committed);
    ``None`` when the high watermark is unknown."""
    if highwater is None:
        return None
    return max(0, highwater - resume_offset(committed, earliest))


def resume_offset(committed: int | None, earliest: int | None) -> int:
    """Where the group reads a partition from: its committed offset, else its earliest."""
    return committed if committed is not None else (earliest or 0)


class LagReport:
    """The lag gauge of one worker, and the records waiting for its stall watchdog."""

    def __init__(self, worker: WorkerApp) -> None:
        self.worker = worker
        self.app = worker.app
        self.names = short_names(worker.settings)
        self.refetch = Refetch(worker.settings.worker_stall_seconds / 3)
        self._reported: set[tuple[str, str]] = set()
        # Records waiting in the worker's partitions at the last refresh.
        self.total = 0
        self.failures = 0  # refreshes failed in a row

    async def refresh(self) -> None:
        """Refresh the lag gauge for every assigned parkstream partition."""
        consumer = self.app.consumer
        names = self.names
        try:
            tps = [tp for tp in consumer.assignment() if tp.topic in names]
            highwaters = await consumer.highwaters(*tps) if tps else {}
            committed = self.worker.committed_offsets()
            unknown = [tp for tp in tps if committed.get(tp) is None]
            earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
        except Exception as exc:  # not started yet, rebalancing, broker away: try next time
            self.failures += 1
            # Blind while it fails: the stall watchdog keeps the last count it saw.
            report = log.warning if self.failures == FAILURES_REPORTED else log.debug
            report(
                'consumer lag not refreshed failures=%d error="%s: %s"',
                self.failures,
                type(exc).__name__,
                exc,
            )
            return
        if self.failures >= FAILURES_REPORTED:
            log.info("consumer lag refreshed again failures=%d", self.failures)
        self.failures = 0
        current: set[tuple[str, str]] = set()
        total = 0
        self.refetch.retain(tps)
        for tp in tps:
            lag = partition_lag(highwaters.get(tp), committed.get(tp), earliest.get(tp))
            if lag is None:
                continue
            total += lag
            busy = lag > 0 and (self.worker.in_hand(tp) > 0 or self.worker.queued(tp) > 0)
            if self.refetch.stuck(tp, lag, committed.get(tp), busy):
                await self._refetch(tp, committed.get(tp), earliest.get(tp), lag)
            labels = (names[tp.topic], str(tp.partition))
            CONSUMER_LAG.labels(*labels).set(lag)
            current.add(labels)
        for labels in self._reported - current:
            CONSUMER_LAG.remove(*labels)
        self._reported = current
        self.total = total

    async def _refetch(
        self, tp: object, committed: int | None, earliest: int | None, waiting: int
    ) -> None:
        start = resume_offset(committed, earliest)
        topic = self.names[tp.topic]  # type: ignore[attr-defined]  # a Faust TP
        log.warning(
            'records wait and none was handed over; fetching the partition again topic="%s" '
            "partition=%d from_offset=%d waiting=%d idle_seconds=%.0f",
            topic,
            tp.partition,  # type: ignore[attr-defined]
            start,
            waiting,
            self.refetch.after_seconds,
        )
        REFETCHES.labels(topic).inc()
        try:
            await self.worker.seek(tp, start)
        except Exception as exc:  # the next refresh tries again; the watchdog has the last word
            log.warning('partition not fetched again error="%s"', exc)


def register(worker: WorkerApp) -> LagReport:
    """Report the lag every ``LAG_INTERVAL_SECONDS``; the records waiting are work for the
    stall watchdog."""
    report = LagReport(worker)
    worker.watchdog.add_work("lag", lambda: report.total)

    async def report_lag() -> None:
        await report.refresh()

    worker.app.timer(interval=LAG_INTERVAL_SECONDS)(report_lag)
    return report
