"""A push interrupted by a hard crash after the Controller applied it: in doubt, then resolved."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from consumers.deadletters import read_dead_letters, resolve, select
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.e2e.conftest import metric_value, wait_until

pytestmark = pytest.mark.slow


def active_permit() -> dict[str, str]:
    """A permit valid now, so validate/plate lists it."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return {
        "Amount": "6.50",
        "CurrencyID": "CAD",
        "LicencePlate": "DOUBT1",
        "zone": "Lot 4",
        "permitNo": "DOUBT-1",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


async def test_a_push_applied_before_a_crash_is_reported_in_doubt_and_resolved_by_an_operator(
    stack,
):
    stack.env["PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS"] = "60"
    stack.start_sandbox()
    worker = stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:
        # The Controller commits the push, then never answers: the worker is killed mid-call.
        await stack.set_faults(http, hang_rate=1.0, after_apply=True, endpoints=["permits/push"])
        reference = await stack.push(http, active_permit())
        await wait_until(lambda: stack.sandbox_permits(http), timeout=60)
        worker.stop(signal.SIGKILL)
        await http.delete(f"{stack.sandbox_url}/_sandbox/faults")

        stack.start_worker()
        status_url = (
            f"http://127.0.0.1:{stack.env['PARKSTREAM_WORKER_WEB_PORT']}/sessions/{reference}"
        )

        async def state() -> str | None:
            answer = await http.get(status_url)
            return answer.json().get("state") if answer.status_code == 200 else None

        assert await wait_until(lambda: _is(state, "in_doubt"), timeout=120)
        assert len(await stack.sandbox_permits(http)) == 1  # never pushed twice
        metrics = await stack.worker_metrics(http, worker=1)
        assert metric_value(metrics, "parkstream_sessions_in_doubt_total") == 1

        # The vendor changes the permit: held, not guessed.
        new_end = (datetime.now(UTC) + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S")
        answer = await http.post(
            f"{stack.gateway_url}/api/{CLIENT}/v1/permits/update",
            json={"apiToken": VENDOR_TOKEN, "referenceID": reference, "endTime": new_end},
        )
        assert answer.status_code == 200, answer.text
        held = await wait_until(
            lambda: select(read_dead_letters(stack.settings), reason="in_doubt"), timeout=60
        )
        assert held[0].key == reference.encode()

        # The operator finds the permit's id in the Controller and resolves the session.
        [permit] = await stack.sandbox_permits(http)
        assert resolve(stack.settings, reference, permit["reference_id"]) == 1

        async def updated() -> bool:
            [p] = await stack.sandbox_permits(http)
            return p["end_time"].startswith(new_end)

        assert await wait_until(updated, timeout=60)
        assert await state() == "delivered"


async def _is(state, expected: str) -> bool:
    return await state() == expected
