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

from prometheus_client import Gauge

from parkstream.settings import TOPICS
from streams.app import app, settings, watchdog

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0

CONSUMER_LAG = Gauge(
    "parkstream_consumer_lag",
    "Records in a partition the worker owns that it has not consumed yet.",
    ["topic", "partition"],
)

# Full topic name -> the short name used as the label (table changelogs are left out).
SHORT_NAMES = {settings.topic(name): name for name in TOPICS}
_reported: set[tuple[str, str]] = set()
# Records waiting in the worker's partitions at the last refresh: work for the stall watchdog.
_total = [0]
watchdog.add_work("lag", lambda: _total[0])


def partition_lag(highwater: int | None, committed: int | None, earliest: int | None) -> int | None:
    """Records after the committed offset (or after ``earliest`` when nothing is committed);
    ``None`` when the high watermark is unknown."""
    if highwater is None:
        return None
    start = committed if committed is not None else (earliest or 0)
    return max(0, highwater - start)


def _committed_offsets() -> Mapping[object, int | None]:
    # Faust keeps the offsets it committed (and read from the broker at assignment) here;
    # it has no public accessor for them.
    return getattr(app.consumer, "_committed_offset", {})


@app.timer(interval=LAG_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
async def report_lag() -> None:
    """Refresh the lag gauge for every assigned parkstream partition."""
    consumer = app.consumer
    try:
        tps = [tp for tp in consumer.assignment() if tp.topic in SHORT_NAMES]
        highwaters = await consumer.highwaters(*tps) if tps else {}
        committed = _committed_offsets()
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
        labels = (SHORT_NAMES[tp.topic], str(tp.partition))
        CONSUMER_LAG.labels(*labels).set(lag)
        current.add(labels)
    for labels in _reported - current:
        CONSUMER_LAG.remove(*labels)
    _reported.clear()
    _reported.update(current)
    _total[0] = total
