"""The worker's zone labels learnt from the sandbox Controller (a real HTTP server on a
loopback port): its permits/stats lists every zone pushed to it, disconnected ones too, and
the labels stay bounded all the same (streams/zones.py, docs/metrics.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestServer

from foundation.controller import ControllerClient
from sandbox.app import SandboxConfig, create_app
from streams import zones
from streams.stats import OTHER_ZONES, ZONE_LABEL_LIMIT, MetricLabels, ZoneLabels

CLIENT = "OC-TOMA"
TOKEN = "sbx-zone-refresh-token"
START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    server = TestServer(create_app(SandboxConfig(client=CLIENT, api_token=TOKEN)), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def labels() -> MetricLabels:
    # configured: the Controller has no permit there
    return MetricLabels(ZoneLabels(["Visitor Garage"]))


async def push(client: ControllerClient, zone: str, n: int) -> None:
    await client.push_permit(
        {
            "plate": f"ZR{n:04d}",
            "zone": zone,
            "start_time": START,
            "end_time": START + timedelta(hours=1),
        }
    )


async def test_a_refresh_from_the_sandbox_labels_its_busiest_zones_and_no_more(sandbox_url, labels):
    junk = [f"made up {n:03d}" for n in range(ZONE_LABEL_LIMIT + 100)]
    async with ControllerClient(sandbox_url, CLIENT, TOKEN) as client:
        n = 0
        for zone, permits in (("Lot 4", 3), ("Red Lot", 2)):
            for _ in range(permits):
                await push(client, zone, n := n + 1)
        for zone in junk:  # one vendor's made-up zones: the sandbox keeps every one
            await push(client, zone, n := n + 1)
        assert await zones.refresh_zones(client, labels)

    assert [labels.zone_label(z) for z in ("lot 4", "RED LOT", "visitor garage")] == [
        "Lot 4",
        "Red Lot",
        "Visitor Garage",
    ]
    assert labels.zone_labels.reported == ZONE_LABEL_LIMIT
    junk_labels = [labels.zone_label(zone) for zone in junk]
    # The Controller's two busy zones first, then made-up ones by name up to the limit.
    assert junk_labels.count(OTHER_ZONES) == len(junk) - (ZONE_LABEL_LIMIT - 2)
    # configured, reported, "", other
    assert len(labels.zone_labels.values) == 1 + ZONE_LABEL_LIMIT + 2
