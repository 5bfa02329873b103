"""Enrichment and dedupe through the live stack: what the Controller finally receives."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.e2e.conftest import metric_value, wait_until
from tests.support.examples import PERMIT_PUSH_EXAMPLE


async def test_zones_are_mapped_unknown_ones_flagged_and_vendor_retries_applied_once(
    stack, tmp_path
):
    aliases = tmp_path / "zones.json"
    aliases.write_text(json.dumps({"Lot 4": ["L4", "Lot-4"], "Red Lot": []}))
    stack.env["PARKSTREAM_ZONE_ALIASES"] = str(aliases)
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:
        aliased = {**PERMIT_PUSH_EXAMPLE, "zone": "L4", "LicencePlate": "pl8-rdr"}
        first = await stack.push(http, aliased)
        retry = await stack.push(http, aliased)  # the vendor timed out and sent it again
        assert retry == first
        unknown = {**PERMIT_PUSH_EXAMPLE, "zone": "Blue Lot", "permitNo": "BL-1"}
        await stack.push(http, unknown)
        update = {"apiToken": VENDOR_TOKEN, "referenceID": first, "Amount": "20.00"}
        for _ in range(2):  # the same update twice
            answer = await http.post(
                f"{stack.gateway_url}/api/{CLIENT}/v1/permits/update", json=update
            )
            assert answer.status_code == 200

        async def settled() -> bool:
            return (
                len(await stack.sandbox_journal(http, "permits/update")) >= 1
                and len(await stack.sandbox_permits(http)) >= 2
            )

        await wait_until(settled, timeout=90)
        await asyncio.sleep(3)  # a duplicate, if one slipped through, would arrive now
        permits = {p["permit_no"]: p for p in await stack.sandbox_permits(http)}
        assert permits["L4-1138"]["zone"] == "Lot 4"
        assert permits["L4-1138"]["plate"] == "PL8RDR"
        assert permits["BL-1"]["zone"] == "Blue Lot"  # pushed as sent, but flagged
        assert len(await stack.sandbox_journal(http, "permits/push")) == 2
        assert len(await stack.sandbox_journal(http, "permits/update")) == 1
        metrics = await stack.worker_metrics(http)
        flagged = metric_value(metrics, "parkstream_events_flagged_total", flag="unknown_zone")
        assert flagged == 1
        assert metric_value(metrics, "parkstream_dedupe_dropped_total", topic="sessions") >= 1
