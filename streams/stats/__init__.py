r"""Per-zone statistics, folded from ``parkstream.results.v1``: what the Controller applied.

    results.v1 --fold_results--> zone_stats table (changelogged) --> GET /stats/zones
                                                                 \-> parkstream_zone_* metrics

Counted per zone, per vendor and per UTC day (plus all-time totals): permits created,
updated and deleted, revenue as exact decimals per currency, rejections per Controller
``ErrorCode``; and, as of now, permits live (applied, not deleted: what the Controller's
permits/stats counts) and active (live, started, not ended). docs/stats.md says what
each figure means.

How it is kept (one table, ``zone_stats``; its changelog is what a restarted worker
recovers):

* **Keys are per results partition.** Faust writes a table key to the changelog
  partition of the event being processed, and a worker recovers only the changelog
  partitions of the results partitions it owns. A key per zone would be written from
  every partition, so each worker would hold a different partial value under the same
  key. Every aggregate key therefore starts with the results partition it is folded
  from: ``zone:[partition, zone, vendor, day]`` (day ``null`` for the all-time row), and a
  query sums across partitions. Per-session state is keyed ``session:<session id>``;
  results are keyed by session id, so a session lives in one partition too.
* **Windows** are tumbling UTC days of ``completed_at`` (when the Controller answered),
  kept as the ``day`` part of the key for ``DAY_RETENTION_DAYS``; all-time rows are
  never pruned.
* **Dedupe.** The dispatcher writes results at least once: after a crash the same
  command's result can appear again, at a later offset. Each session keeps the ids of
  its last ``SEEN_PER_SESSION`` commands with the outcome counted; a result of a command
  already counted is not counted again, except an application after a rejection (a
  dead letter replayed after a fix) or a rejection with another code.
* **Redelivery of our own input** (a crash between table writes and the offset commit)
  is made harmless by offsets: every row records ``through``, the last results offset
  folded into it, and a row never takes an offset twice. The session row is written
  last, and one partition's changelog keeps its order, so a session row that has an
  offset proves every aggregate row has it too.
* **Routing.** ``GET /stats/zones`` on any worker asks every worker for the partitions
  it actively owns (``/stats/zones/partial``, from the assignor's table metadata) and sums
  the answers; ``complete`` is false, with the missing partitions, when one did not
  answer (a rebalance, a worker down).

Its modules, one idea each (the first three pure: no Faust, no I/O):

* ``fold``: a result folded into its session's state and its zone's rows; retention.
* ``query``: ``StatsQuery``, a worker's share of an answer, and the answer.
* ``labels``: the ``parkstream_zone_*`` metrics and their bounded zone and currency labels.
* ``agent``: ``Stats``, one worker's table, pending rows and labels; the agent's head.
* ``views``: ``/stats/zones`` and ``/stats/zones/partial``, table-routed across workers.

``register`` assembles them on a worker and returns its ``Stats``.
"""

from __future__ import annotations

from typing import Any

import faust

from foundation.worker.app import WorkerApp
from streams.enrich import ZoneDirectory
from streams.stats.agent import Stats
from streams.stats.fold import (
    DAY_RETENTION_DAYS,
    ROW_PREFIX,
    SEEN_PER_SESSION,
    SESSION_PREFIX,
    expired,
    row_key,
    session_key,
)
from streams.stats.labels import (
    OTHER_CURRENCIES,
    OTHER_ZONES,
    ZONE_LABEL_LIMIT,
    CurrencyLabels,
    MetricLabels,
    ZoneLabels,
    configure_labels,
)
from streams.stats.query import StatsQuery, answer, parse_query, partial_rows
from streams.stats.views import Views

__all__ = [
    "DAY_RETENTION_DAYS",
    "OTHER_CURRENCIES",
    "OTHER_ZONES",
    "ROW_PREFIX",
    "SEEN_PER_SESSION",
    "SESSION_PREFIX",
    "ZONE_LABEL_LIMIT",
    "CurrencyLabels",
    "MetricLabels",
    "Stats",
    "StatsQuery",
    "ZoneLabels",
    "answer",
    "configure_labels",
    "expired",
    "parse_query",
    "partial_rows",
    "register",
    "row_key",
    "session_key",
]


def register(worker: WorkerApp, zones: ZoneDirectory) -> Stats:
    """Add the stats agent (table ``zone_stats``) and its views; label the operator's zones.

    Returns the worker's ``Stats``: its table and labels (the zone refresh takes them)."""
    labels = configure_labels(worker.settings, zones)
    stats = Stats(worker.table("zone_stats", key_type=str), labels)
    worker.on_revocation(stats.forget_pending)
    views = Views(worker, stats.table)
    app = worker.app

    async def fold_results(stream: faust.StreamT[Any]) -> None:
        """Fold every Controller result into the per-zone statistics."""
        await worker.pipeline("fold_results").run(stream, stats.head(worker))

    async def stats_zones(web: Any, request: Any) -> Any:
        return await views.stats_zones(web, request)

    async def stats_zones_partial(web: Any, request: Any) -> Any:
        return await views.stats_zones_partial(web, request)

    app.agent(worker.results_topic, name=f"{__name__}.fold_results")(fold_results)
    app.on_partitions_revoked.connect(views.rebalancing)  # type: ignore[arg-type]
    stats.table.on_recover(views.table_recovered)
    app.page("/stats/zones")(stats_zones)
    app.page("/stats/zones/partial")(stats_zones_partial)
    return stats
