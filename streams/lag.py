"""Consumer lag per partition: ``parkstream_consumer_lag{topic,partition}``.

Every ``LAG_INTERVAL_SECONDS`` the worker asks the broker for the high watermark of each
parkstream partition it is assigned and subtracts the group's committed offset: the
records waiting in Kafka, including those read but whose outcome is not recorded yet
(the dispatcher commits only past recorded outcomes). A partition never committed counts
from its earliest offset (the group starts there). Partitions no longer assigned drop
out of the gauge, so a rebalance does not leave a stale series behind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import faust
from prometheus_client import Gauge

from parkstream.settings import TOPICS, Settings
from streams.app import WorkerApp

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0

CONSUMER_LAG = Gauge(
    "parkstream_consumer_lag",
    "Records in a partition the worker owns that it has not consumed yet.",
    ["topic", "partition"],
)


def short_names(settings: Settings) -> dict[str, str]:
    """Full topic name -> the short name used as the label (table changelogs are left out)."""
    return {settings.topic(name): name for name in TOPICS}


def partition_lag(highwater: int | None, committed: int | None, earliest: int | None) -> int | None:
    """Records after the committed offset (or after ``earliest`` when nothing is committed);
    ``None`` when the high watermark is unknown."""
    if highwater is None:
        return None
    start = committed if committed is not None else (earliest or 0)
    return max(0, highwater - start)


def _committed_offsets(app: faust.App) -> Mapping[object, int | None]:
    # Faust keeps the offsets it committed (and read from the broker at assignment) here;
    # it has no public accessor for them.
    return getattr(app.consumer, "_committed_offset", {})


class LagReport:
    """The lag gauge of one worker, and the records waiting for its stall watchdog."""

    def __init__(self, worker: WorkerApp) -> None:
        self.app = worker.app
        self.names = short_names(worker.settings)
        self._reported: set[tuple[str, str]] = set()
        # Records waiting in the worker's partitions at the last refresh.
        self.total = 0

    async def refresh(self) -> None:
        """Refresh the lag gauge for every assigned parkstream partition."""
        consumer = self.app.consumer
        names = self.names
        try:
            tps = [tp for tp in consumer.assignment() if tp.topic in names]
            highwaters = await consumer.highwaters(*tps) if tps else {}
            committed = _committed_offsets(self.app)
            unknown = [tp for tp in tps if committed.get(tp) is None]
            earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
        except Exception as exc:  # not started yet, rebalancing, broker away: try next time
            log.debug('consumer lag not refreshed error="%s"', exc)
            return
        current: set[tuple[str, str]] = set()
        total = 0
        for tp in tps:
            lag = partition_lag(highwaters.get(tp), committed.get(tp), earliest.get(tp))
            if lag is None:
                continue
            total += lag
            labels = (names[tp.topic], str(tp.partition))
            CONSUMER_LAG.labels(*labels).set(lag)
            current.add(labels)
        for labels in self._reported - current:
            CONSUMER_LAG.remove(*labels)
        self._reported = current
        self.total = total


def register(worker: WorkerApp) -> LagReport:
    """Report the lag every ``LAG_INTERVAL_SECONDS``; the records waiting are work for the
    stall watchdog."""
    report = LagReport(worker)
    worker.watchdog.add_work("lag", lambda: report.total)

    async def report_lag() -> None:
        await report.refresh()

    worker.app.timer(interval=LAG_INTERVAL_SECONDS)(report_lag)
    return report
