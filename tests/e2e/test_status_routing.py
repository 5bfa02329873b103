"""Delivery status across workers: any worker answers for any session.

Each session's state lives in the worker that owns its commands partition;
``GET /sessions/{ref}`` on another worker is forwarded there by hashing the key.
That hash must see the same bytes as the commands topic's partitioner, or the
request goes to a worker that never had the session.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from foundation.broker import free_port
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.slow

SESSIONS = 24


async def test_every_worker_answers_the_status_of_every_session(stack):
    stack.start_sandbox()
    workers = [stack.start_worker(free_port()) for _ in range(2)]
    stack.start_gateway()
    start = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(timeout=10) as http:
        references = [
            await stack.push(
                http,
                {
                    "Amount": "3.00",
                    "CurrencyID": "CAD",
                    "LicencePlate": f"ROUTE{index}",
                    "zone": "Lot 1",
                    "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
                    "endTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                },
            )
            for index in range(SESSIONS)
        ]

        async def all_applied() -> bool:
            return len(await stack.sandbox_permits(http)) == SESSIONS

        assert await wait_until(all_applied, timeout=120)

        async def answers(worker) -> dict[str, str | None]:
            return {
                reference: (await stack.session_status(http, reference, worker))["state"]
                for reference in references
            }

        for worker in workers:
            # Both workers own partitions (3 partitions, 2 workers): about half of the
            # lookups on each are forwarded to the other.
            states: dict[str, str | None] = {}

            async def settled(w=worker, states=states) -> bool:
                states.update(await answers(w))
                return set(states.values()) == {"delivered"}

            with contextlib.suppress(TimeoutError):
                await wait_until(settled, timeout=30, interval=1)
            missing = sorted(r for r, state in states.items() if state != "delivered")
            assert not missing, (worker.env["PARKSTREAM_WORKER_WEB_PORT"], missing)
