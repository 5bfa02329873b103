"""The worker's tables on disk (issue 14): RocksDB files under PARKSTREAM_DATA_DIR by default, a
worker killed with SIGKILL and restarted still answers every session's delivery status, and
/readyz answers 503 until the tables are recovered."""

from __future__ import annotations

import asyncio
import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.e2e.conftest import Stack, wait_until

pytestmark = pytest.mark.slow

SESSIONS = 60


def permit(index: int, start: datetime) -> dict[str, str]:
    return {
        "Amount": "3.00",
        "CurrencyID": "CAD",
        "LicencePlate": f"DISK{index}",
        "zone": "Lot 1",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


async def delivered_sessions(stack: Stack, http: httpx.AsyncClient) -> list[str]:
    """Push ``SESSIONS`` permits through the gateway and wait until each is delivered."""
    start = datetime.now(UTC).replace(microsecond=0)
    references = [await stack.push(http, permit(i, start)) for i in range(SESSIONS)]

    async def all_delivered() -> bool:
        states = [(await stack.session_status(http, r))["state"] for r in references]
        return states == ["delivered"] * SESSIONS

    await wait_until(all_delivered, timeout=120, interval=1)
    return references


async def states_and_refs(stack: Stack, http: httpx.AsyncClient, references: list[str]):
    return {
        r: ((s := await stack.session_status(http, r))["state"], s.get("controller_reference_id"))
        for r in references
    }


def table_files(stack: Stack) -> list[Path]:
    return sorted(Path(stack.env["PARKSTREAM_DATA_DIR"]).rglob("sessions-*.db"))


async def delivered_stack(stack: Stack, http: httpx.AsyncClient):
    """Sandbox, one worker and the gateway, with ``SESSIONS`` sessions delivered: the worker,
    the reference ids, and each session's (state, Controller reference id)."""
    stack.env["PARKSTREAM_WORKER_URL"] = (
        f"http://127.0.0.1:{stack.env['PARKSTREAM_WORKER_WEB_PORT']}"
    )
    stack.start_sandbox()
    worker = stack.start_worker()
    stack.start_gateway()
    references = await delivered_sessions(stack, http)
    return worker, references, await states_and_refs(stack, http, references)


async def test_a_worker_killed_and_restarted_answers_every_sessions_status_from_its_files(stack):
    async with httpx.AsyncClient(timeout=10) as http:
        worker, references, before = await delivered_stack(stack, http)
        assert table_files(stack)  # the default store: RocksDB files under the data dir

        worker.stop(signal.SIGKILL)
        stack.start_worker()

        async def ready() -> bool:
            port = stack.env["PARKSTREAM_WORKER_WEB_PORT"]
            return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200

        await wait_until(ready, timeout=120, interval=0.5)
        # Ready means recovered: every session answers at once, with its Controller id.
        assert await states_and_refs(stack, http, references) == before
        # And the vendor sees it through the gateway as before.
        answer = await http.get(
            f"{stack.gateway_url}/api/{CLIENT}/v1/permits/{references[0]}",
            headers={"Authorization": f"Bearer {VENDOR_TOKEN}"},
        )
        assert answer.status_code == 200 and answer.json()["state"] == "delivered"


async def test_readyz_answers_503_until_the_tables_are_recovered(stack):
    async with httpx.AsyncClient(timeout=10) as http:
        worker, references, before = await delivered_stack(stack, http)
        worker.stop()
        # Cold: the files are gone, so every table is rebuilt from its changelog.
        shutil.rmtree(stack.env["PARKSTREAM_DATA_DIR"] + "/worker")
        stack.start_worker()
        port = stack.env["PARKSTREAM_WORKER_WEB_PORT"]
        reasons: list[str] = []
        while True:
            answer = await http.get(f"http://127.0.0.1:{port}/readyz")
            if answer.status_code == 200:
                break
            assert answer.status_code == 503
            reasons.append(answer.json()["reason"])
            await asyncio.sleep(0.05)
        # The moment it says ready, every session's state is there (nothing still recovering).
        assert await states_and_refs(stack, http, references) == before
        assert reasons and reasons[0] == "waiting for the consumer group to assign partitions"
