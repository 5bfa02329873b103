"""The read endpoints are passed through to the Controller with parkstream's own token."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from parkstream.broker import free_port
from parkstream.settings import Settings
from producers.gateway import create_app
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR_TOKEN
from tests.support.recording_controller import RecordingController


@pytest.fixture
async def controller():
    recording = await RecordingController().start()
    yield recording
    await recording.stop()


@pytest.fixture
async def gateway(stack_env, controller):
    settings = Settings.from_env({**stack_env, "PARKSTREAM_CONTROLLER_URL": controller.url})
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_permit_stats_reach_the_controller_with_parkstreams_token(gateway, controller):
    answer = await gateway.post(
        f"/api/{CLIENT}/v1/permits/stats", json={"apiToken": VENDOR_TOKEN, "zones": "zone1, Lot 2"}
    )
    assert answer.status == 200
    assert await answer.json() == {
        "data": [
            {"type": "standard", "zone": "zone1", "total": "4"},
            {"type": "temp", "zone": "zone1", "total": "35"},
        ]
    }
    [call] = controller.calls
    assert call.path == f"/api/{CLIENT}/v1/permits/stats"
    assert call.body == {"apiToken": CONTROLLER_TOKEN, "zones": "zone1,Lot 2"}


@pytest.mark.parametrize(
    "endpoint", ["profiles/types/list", "violations/send_overdue_to_collections"]
)
async def test_token_only_read_endpoints_relay_the_controllers_answer(
    gateway, controller, endpoint
):
    answer = await gateway.post(f"/api/{CLIENT}/v1/{endpoint}", json={"apiToken": VENDOR_TOKEN})
    assert answer.status == 200
    assert "status" in await answer.json() or "records" in await answer.json()
    [call] = controller.calls_to(endpoint)
    assert call.body == {"apiToken": CONTROLLER_TOKEN}


async def test_plate_validation_carries_the_client_in_the_body(gateway, controller):
    answer = await gateway.post(
        "/api/v1/validate/plate",
        json={"api_token": VENDOR_TOKEN, "client": CLIENT.lower(), "plate": "ABC123"},
    )
    assert answer.status == 200
    assert (await answer.json())["data"]["plate"] == "ABC123"
    [call] = controller.calls
    assert call.body == {"api_token": CONTROLLER_TOKEN, "client": CLIENT, "plate": "ABC123"}


async def test_plate_validation_errors_come_in_its_own_envelope(gateway, controller):
    answer = await gateway.post(
        "/api/v1/validate/plate", json={"api_token": VENDOR_TOKEN, "client": CLIENT}
    )
    assert answer.status == 422
    assert await answer.json() == {
        "error": 9006,
        "data": {},
        "message": "Plate is a required field.",
        "ErrorCode": 9006,
        "ErrorMessage": "Plate is a required field.",
    }
    assert controller.calls == []


async def test_an_unknown_vendor_is_refused_before_the_controller_is_called(gateway, controller):
    answer = await gateway.post(f"/api/{CLIENT}/v1/permits/stats", json={"apiToken": "nope"})
    assert (answer.status, (await answer.json())["ErrorCode"]) == (403, 9002)
    assert controller.calls == []


async def test_503_with_retry_after_when_the_controller_is_unreachable(stack_env):
    settings = Settings.from_env(
        {**stack_env, "PARKSTREAM_CONTROLLER_URL": f"http://127.0.0.1:{free_port()}"}
    )
    async with TestClient(TestServer(create_app(settings))) as gateway:
        answer = await gateway.post(
            f"/api/{CLIENT}/v1/profiles/types/list", json={"apiToken": VENDOR_TOKEN}
        )
        assert answer.status == 503
        assert int(answer.headers["Retry-After"]) > 0
