"""Consumer lag: commands waiting for a Controller that does not answer show as lag on the
worker's /metrics, per partition, and the lag goes back to zero once they are applied."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from tests.e2e.conftest import metric_value, wait_until
from tests.e2e.test_stats import Vendors


async def test_commands_waiting_for_the_controller_are_consumer_lag(stack):
    stack.env["PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS"] = "2"
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=15) as http:

        async def lag() -> float:
            text = await stack.worker_metrics(http)
            return metric_value(text, "parkstream_consumer_lag", topic="commands")

        async def reported() -> bool:
            text = await stack.worker_metrics(http)
            return 'parkstream_consumer_lag{partition="0",topic="commands"}' in text

        await wait_until(reported, timeout=60)
        # The Controller stops answering pushes: their commands cannot be committed.
        await stack.set_faults(http, hang_rate=1.0, endpoints=["permits/push"])
        vendors = Vendors(stack, http)
        # Active permits: once it answers again, the Controller can show whether it has them
        # (an ended one whose push timed out would be in doubt, docs/delivery.md).
        await vendors.push(3, datetime.now(UTC).replace(microsecond=0), starts=(-1,))
        await wait_until(lambda: _at_least(lag, 1), timeout=60)

        await http.delete(f"{stack.sandbox_url}/_sandbox/faults")
        await vendors.delivered()
        await wait_until(lambda: _at_most(lag, 0), timeout=60)


async def _at_least(value, floor: float) -> bool:
    return await value() >= floor


async def _at_most(value, ceiling: float) -> bool:
    return await value() <= ceiling
