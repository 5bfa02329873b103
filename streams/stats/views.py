"""The web views ``/stats/zones`` and ``/stats/zones/partial``: any worker answers for all.

``/stats/zones`` answers this worker's share from its table, asks every other worker for the
partitions it actively owns (``/stats/zones/partial``, from the assignor's table metadata)
and sums the shares; a partition whose worker did not answer, or that is still recovering,
is reported missing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp

from foundation.worker.app import WorkerApp
from streams.stats.query import StatsQuery, answer, parse_query, partial_rows

# The package's logger: log lines name it as they did before the package was split.
log = logging.getLogger("streams.stats")

PEER_TIMEOUT_SECONDS = 5.0


def _bad_request(web: Any, reason: str) -> Any:
    return web.json({"error": reason}, status=400)


class Views:
    """``/stats/zones`` and ``/stats/zones/partial`` of one worker."""

    def __init__(self, worker: WorkerApp, table: Any) -> None:
        self.app = worker.app
        self.table = table
        self.partitions = worker.settings.topic_partitions
        self.results_topic = worker.results_topic
        # Results partitions whose rows are whole: recovered from the changelog since the
        # last rebalance began. Until then a partition's figures are partial and it is
        # reported missing.
        self.recovered: set[int] = set()

    def active_partitions(self) -> set[int]:
        results = self.results_topic.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == results}

    async def rebalancing(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.recovered.clear()

    async def table_recovered(self) -> None:
        self.recovered.clear()
        self.recovered.update(self.active_partitions())

    def owned_partitions(self) -> set[int]:
        """Results partitions this worker actively owns and has recovered (standby copies
        and partitions still recovering are not served)."""
        return self.active_partitions() & self.recovered

    def local_partial(self, query: StatsQuery, wanted: set[int], now: datetime) -> dict[str, Any]:
        owned = self.owned_partitions() & wanted
        days = query.days(now.date())
        rows = partial_rows(self.table.items(), owned, query, days, now)
        return {"partitions": sorted(owned), "rows": rows}

    def hosts(self) -> dict[str, set[int]]:
        """Worker URL -> the table partitions it actively owns (from the last rebalance)."""
        changelog = self.table.changelog_topic.get_topic_name()
        hosts: dict[str, set[int]] = {}
        for url, topics in self.app.router.table_metadata(self.table.name).items():
            partitions = set(topics.get(changelog, ()))
            if partitions:
                hosts[str(url)] = partitions
        return hosts

    async def peer_partial(
        self, url: str, query: StatsQuery, partitions: set[int]
    ) -> dict[str, Any]:
        params = {**query.params(), "partitions": ",".join(str(p) for p in sorted(partitions))}
        try:
            async with self.app.http_client.get(
                f"{url.rstrip('/')}/stats/zones/partial",
                params=params,
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS),
            ) as response:
                response.raise_for_status()
                answer: dict[str, Any] = await response.json()
                return answer
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning('stats: a worker did not answer url="%s" error="%s"', url, exc)
            return {"partitions": [], "rows": []}

    async def stats_zones(self, web: Any, request: Any) -> Any:
        """Per-zone statistics of every worker: ``?zones=a,b&vendor=v&since=D&until=D``."""
        try:
            query = parse_query(request.query)
        except ValueError as exc:
            return _bad_request(web, str(exc))
        now = datetime.now(UTC)
        me = str(self.app.conf.canonical_url)
        hosts = self.hosts()
        # Partitions no worker holds in the last assignment's metadata are asked of this
        # one; each partition is asked of one worker only, so nothing is counted twice.
        mine = set(range(self.partitions)) - set().union(set(), *hosts.values())
        peers = []
        for url, partitions in hosts.items():
            if url == me:
                mine |= partitions
            else:
                peers.append(self.peer_partial(url, query, partitions))
        partials = [self.local_partial(query, mine, now), *await asyncio.gather(*peers)]
        return web.json(answer(partials, self.partitions, query, now))

    async def stats_zones_partial(self, web: Any, request: Any) -> Any:
        """This worker's share: the asked ``partitions`` it actively owns (used by /stats/zones)."""
        try:
            query = parse_query(request.query)
            wanted = {int(p) for p in request.query.get("partitions", "").split(",") if p.strip()}
        except ValueError as exc:
            return _bad_request(web, str(exc))
        return web.json(self.local_partial(query, wanted, datetime.now(UTC)))
