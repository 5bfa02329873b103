"""GET /api/{client}/v1/permits/{reference_id}: delivery status, asked of the worker."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.broker import free_port
from foundation.settings import Settings
from producers.gateway import create_app
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.recording_controller import WorkerSessions

BANNER_TOKEN = "banner-test-token-0002"


@pytest.fixture
async def worker():
    sessions = await WorkerSessions().start()
    yield sessions
    await sessions.stop()


@pytest.fixture
async def gateway(stack_env, worker):
    settings = Settings.from_env({**stack_env, "PARKSTREAM_WORKER_URL": worker.url})
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def push(gateway) -> str:
    answer = await gateway.post(
        f"/api/{CLIENT}/v1/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
    )
    return (await answer.json())["reference_id"]


def bearer(token: str = VENDOR_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status(gateway, reference: str, **kw):
    answer = await gateway.get(f"/api/{CLIENT}/v1/permits/{reference}", **kw)
    return answer.status, await answer.json()


async def test_a_permit_the_worker_has_not_recorded_yet_is_accepted(gateway, worker):
    reference = await push(gateway)
    assert await status(gateway, reference, headers=bearer()) == (
        200,
        {"reference_id": reference, "state": "accepted"},
    )
    assert worker.asked == [reference]


async def test_a_delivered_permit_names_the_controllers_reference_and_when(gateway, worker):
    reference = await push(gateway)
    worker.record(reference, "delivered", controller_reference_id="ctl-77")
    assert await status(gateway, reference, params={"apiToken": VENDOR_TOKEN}) == (
        200,
        {
            "reference_id": reference,
            "state": "delivered",
            "at": "2026-01-02T03:04:05+00:00",
            "controller_reference_id": "ctl-77",
        },
    )


async def test_a_dead_lettered_permit_carries_the_controllers_error(gateway, worker):
    reference = await push(gateway)
    worker.record(
        reference, "dead_lettered", error_code=9006, error_message="Plate is a required field."
    )
    code, body = await status(gateway, reference, headers=bearer())
    assert code == 200
    assert body["state"] == "dead_lettered"
    assert (body["error_code"], body["error_message"]) == (9006, "Plate is a required field.")


@pytest.mark.parametrize("state", ["in_doubt", "deleted"])
async def test_in_doubt_and_deleted_are_reported_as_they_are(gateway, worker, state):
    reference = await push(gateway)
    worker.record(reference, state)
    assert (await status(gateway, reference, headers=bearer()))[1]["state"] == state


async def test_another_vendor_cannot_see_a_permit_and_the_worker_is_not_asked(gateway, worker):
    reference = await push(gateway)
    worker.record(reference, "delivered", controller_reference_id="ctl-77")
    assert await status(gateway, reference, headers=bearer(BANNER_TOKEN)) == (
        404,
        {"ErrorCode": 9009, "ErrorMessage": "Record not found."},
    )
    assert worker.asked == []


async def test_an_id_parkstream_never_issued_gets_9009(gateway):
    code, body = await status(gateway, "1a9b5375-cb75-4c71-9939-eeae550b09ac", headers=bearer())
    assert (code, body["ErrorCode"]) == (404, 9009)


@pytest.mark.parametrize(
    ("kw", "code", "error"),
    [
        ({}, 401, 9001),
        ({"headers": {"Authorization": "Basic abc"}}, 401, 9001),
        ({"headers": {"Authorization": "Bearer not-a-vendor-token"}}, 403, 9002),
        ({"params": {"apiToken": "not-a-vendor-token"}}, 403, 9002),
    ],
    ids=["none", "basic", "unknown-bearer", "unknown-query"],
)
async def test_status_needs_a_vendor_token(gateway, kw, code, error):
    reference = await push(gateway)
    answer = await status(gateway, reference, **kw)
    assert (answer[0], answer[1]["ErrorCode"]) == (code, error)


async def test_status_under_another_client_code_gets_9034(gateway):
    reference = await push(gateway)
    answer = await gateway.get(f"/api/OC-OTHER/v1/permits/{reference}", headers=bearer())
    assert (answer.status, (await answer.json())["ErrorCode"]) == (403, 9034)


async def test_503_with_retry_after_when_the_worker_cannot_be_asked(stack_env):
    settings = Settings.from_env(
        {**stack_env, "PARKSTREAM_WORKER_URL": f"http://127.0.0.1:{free_port()}"}
    )
    async with TestClient(TestServer(create_app(settings))) as gateway:
        reference = await push(gateway)
        answer = await gateway.get(f"/api/{CLIENT}/v1/permits/{reference}", headers=bearer())
        assert answer.status == 503
        assert int(answer.headers["Retry-After"]) > 0
