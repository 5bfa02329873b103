"""Calls interrupted after the Controller applied them: by a hard crash, or by a lost answer.

A push whose outcome is unknown is looked up before it is sent again (in doubt when
found, then resolved by an operator); an update or delete is re-sent safely.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from consumers.deadletters import read_dead_letters, resolve, select
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.e2e.conftest import metric_value, wait_until
from tests.e2e.test_dead_letters import parkstream

pytestmark = pytest.mark.slow


def active_permit(plate: str = "DOUBT1", permit_no: str | None = "DOUBT-1") -> dict[str, str]:
    """A permit valid now, so validate/plate lists it."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    body = {
        "Amount": "6.50",
        "CurrencyID": "CAD",
        "LicencePlate": plate,
        "zone": "Lot 4",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if permit_no is not None:
        body["permitNo"] = permit_no
    return body


async def test_a_push_applied_before_a_crash_is_reported_in_doubt_and_resolved_by_an_operator(
    stack,
):
    stack.env["PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS"] = "60"
    stack.env["PARKSTREAM_WORKER_STALL_SECONDS"] = "120"  # beyond 60 s + the longest cooldown
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

        async def state() -> str | None:
            return (await stack.session_status(http, reference))["state"]

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

        def held_updates():
            letters = select(read_dead_letters(stack.settings), reason="in_doubt")
            return [e for e in letters if e.endpoint == "permits/update"]

        held = await wait_until(held_updates, timeout=60)
        assert held[0].key == reference.encode()

        # The operator finds the permit in the Controller from what the dead letter says...
        listed = parkstream(stack, "dlq", "list", "--reason", "in_doubt")
        [push_row] = [line for line in listed.stdout.splitlines() if "push in doubt" in line]
        for shown in ("plate=DOUBT1", "zone=Lot 4", "end=", "permit_no=DOUBT-1", reference):
            assert shown in push_row, push_row
        # ... and resolves the session with its id.
        [permit] = await stack.sandbox_permits(http)
        assert resolve(stack.settings, reference, permit["reference_id"]) == 1

        async def updated() -> bool:
            [p] = await stack.sandbox_permits(http)
            return p["end_time"].startswith(new_end)

        assert await wait_until(updated, timeout=60)
        assert await state() == "delivered"


async def _is(state, expected: str) -> bool:
    return await state() == expected


async def test_a_call_whose_answer_is_lost_after_the_controller_applied_it_is_never_doubled(stack):
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:

        def state(reference: str):
            async def current() -> str | None:
                return (await stack.session_status(http, reference))["state"]

            return current

        # The Controller stores the push, then answers 503. No ticket number, so a second
        # push would not be refused: only the lookup before re-sending prevents a double.
        await stack.set_faults(http, fail_next=1, after_apply=True, endpoints=["permits/push"])
        lost = await stack.push(http, active_permit("LOST1", permit_no=None))
        assert await wait_until(lambda: _is(state(lost), "in_doubt"), timeout=60)

        # A 503 before anything was stored: looked up, not found, pushed again.
        await stack.set_faults(http, fail_next=1, endpoints=["permits/push"])
        retried = await stack.push(http, active_permit("RETRY1", permit_no=None))
        assert await wait_until(lambda: _is(state(retried), "delivered"), timeout=60)

        # The delete is applied, then answered 503; re-sent, it gets 9009: applied once.
        await stack.set_faults(http, fail_next=1, after_apply=True, endpoints=["permits/delete"])
        answer = await http.post(
            f"{stack.gateway_url}/api/{CLIENT}/v1/permits/delete",
            json={"apiToken": VENDOR_TOKEN, "referenceID": retried},
        )
        assert answer.status_code == 200, answer.text
        assert await wait_until(lambda: _is(state(retried), "deleted"), timeout=60)

        plates = [p["plate"] for p in await stack.sandbox_permits(http)]
        assert sorted(plates) == ["LOST1", "RETRY1"]  # each pushed once
        metrics = await stack.worker_metrics(http)
        assert metric_value(metrics, "parkstream_sessions_in_doubt_total") == 1
        assert (
            metric_value(metrics, "parkstream_journal_reconciled_total", outcome="reapplied") == 1
        )
    # Nothing dead-lettered but the push in doubt itself, with what to look for.
    [letter] = read_dead_letters(stack.settings)
    assert (letter.key, letter.record["reason"]) == (lost.encode(), "in_doubt")
    assert "plate=LOST1" in letter.record["error_message"]
