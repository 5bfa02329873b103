"""SIGTERM (a rolling update) while Controller calls are in flight: nothing in doubt, nothing doubled."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import metric_value, wait_until

pytestmark = pytest.mark.slow

GRACE_SECONDS = 60  # the chart's terminationGracePeriodSeconds for the worker


def permit(index: int) -> dict[str, str]:
    # Started a while ago: validate/plate can show it (docs/delivery.md, "Pushes in doubt").
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return {
        "Amount": "3.25",
        "LicencePlate": f"GS{index:04d}",
        "permitNo": f"GRACE-{index}",
        "zone": "Lot 1",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


async def test_sigterm_finishes_in_flight_calls_and_leaves_nothing_in_doubt(stack):
    stack.start_sandbox()
    worker = stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:
        await stack.set_faults(http, latency_ms=1500, endpoints=["permits/push"])
        for index in range(20):
            await stack.push(http, permit(index))

        async def in_flight() -> bool:
            text = await stack.worker_metrics(http)
            return metric_value(text, "parkstream_controller_in_flight") >= 5

        await wait_until(in_flight, timeout=60, interval=0.1)
        stopping = time.monotonic()
        code = await asyncio.to_thread(worker.stop, signal.SIGTERM, GRACE_SECONDS)
        assert code == 0, worker.log()[-3000:]
        assert time.monotonic() - stopping < GRACE_SECONDS

        await http.delete(f"{stack.sandbox_url}/_sandbox/faults")
        stack.start_worker()

        async def all_pushed() -> bool:
            return len(await stack.sandbox_permits(http)) >= 20

        await wait_until(all_pushed, timeout=120)
        await asyncio.sleep(3)
        permits = await stack.sandbox_permits(http)
        assert sorted(p["permit_no"] for p in permits) == sorted(f"GRACE-{i}" for i in range(20))
        text = await stack.worker_metrics(http, worker=1)
        assert metric_value(text, "parkstream_sessions_in_doubt_total") == 0
        assert (
            metric_value(text, "parkstream_journal_reconciled_total", outcome="pushed_again") == 0
        )


async def test_sigterm_during_a_controller_outage_stops_within_the_grace_period(stack, tmp_path):
    # Calls retried through an outage never end by themselves: the stop must not wait for
    # them (Faust's own wait would), and what they leave is settled by the next owner.
    stack.env["PARKSTREAM_SANDBOX_DB"] = str(tmp_path / "controller.sqlite")
    sandbox = stack.start_sandbox()
    worker = stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:
        for index in range(20):
            await stack.push(http, permit(index))

        async def one_landed() -> bool:
            return len(await stack.sandbox_permits(http)) >= 1

        await wait_until(one_landed, timeout=60)
        sandbox.stop()  # the Controller goes away with calls in flight and commands waiting
        for index in range(20, 40):
            await stack.push(http, permit(index))

        async def retrying() -> bool:
            text = await stack.worker_metrics(http)
            return metric_value(text, "parkstream_controller_calls_total", outcome="transient") >= 5

        await wait_until(retrying, timeout=60, interval=0.2)
        stopping = time.monotonic()
        code = await asyncio.to_thread(worker.stop, signal.SIGTERM, GRACE_SECONDS)
        took = time.monotonic() - stopping
        assert code == 0, worker.log()[-3000:]
        assert took < GRACE_SECONDS, took

        sandbox.start()
        stack.start_worker()

        async def all_pushed() -> bool:
            return len(await stack.sandbox_permits(http)) >= 40

        await wait_until(all_pushed, timeout=120)
        await asyncio.sleep(3)
        permits = await stack.sandbox_permits(http)
        assert sorted(p["permit_no"] for p in permits) == sorted(f"GRACE-{i}" for i in range(40))
