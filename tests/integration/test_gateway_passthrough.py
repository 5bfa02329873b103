"""The read endpoints are passed through to the Controller with parkstream's own token, for
the vendors the operator granted them to (PARKSTREAM_VENDOR_GRANTS): an ungranted call gets
the Controller's 9002 and never reaches the Controller."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.broker import free_port
from foundation.settings import Settings, SettingsError
from producers.gateway import create_app
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.recording_controller import RecordingController


@pytest.fixture
async def controller():
    recording = await RecordingController().start()
    yield recording
    await recording.stop()


BANNER_TOKEN = "banner-test-token-0002"  # tests/conftest.py: a vendor granted nothing here
EVERY_READ = (
    "permits/stats+profiles/types/list+violations/send_overdue_to_collections+validate/plate"
)
NOT_GRANTED = {
    "ErrorCode": 9002,
    "ErrorMessage": "The supplied API token does not have permission to perform that request.",
}


def gateway_settings(stack_env, controller, grants: str) -> Settings:
    return Settings.from_env(
        {
            **stack_env,
            "PARKSTREAM_CONTROLLER_URL": controller.url,
            "PARKSTREAM_VENDOR_GRANTS": grants,
        }
    )


@pytest.fixture
async def gateway(stack_env, controller):
    """hotspot is granted every pass-through endpoint, banner none."""
    settings = gateway_settings(stack_env, controller, f"hotspot={EVERY_READ}")
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
        {
            **stack_env,
            "PARKSTREAM_CONTROLLER_URL": f"http://127.0.0.1:{free_port()}",
            "PARKSTREAM_VENDOR_GRANTS": "hotspot=profiles/types/list",
        }
    )
    async with TestClient(TestServer(create_app(settings))) as gateway:
        answer = await gateway.post(
            f"/api/{CLIENT}/v1/profiles/types/list", json={"apiToken": VENDOR_TOKEN}
        )
        assert answer.status == 503
        assert int(answer.headers["Retry-After"]) > 0


# --------------------------------------------------------------------------------- grants


async def test_an_ungranted_collections_call_gets_9002_and_never_reaches_the_controller(
    gateway, controller
):
    answer = await gateway.post(
        f"/api/{CLIENT}/v1/violations/send_overdue_to_collections",
        json={"apiToken": BANNER_TOKEN},
    )
    assert (answer.status, await answer.json()) == (403, NOT_GRANTED)
    assert controller.calls == []


async def test_an_ungranted_plate_validation_gets_9002_in_its_own_envelope(gateway, controller):
    answer = await gateway.post(
        "/api/v1/validate/plate",
        json={"api_token": BANNER_TOKEN, "client": CLIENT, "plate": "ABC123"},
    )
    assert answer.status == 403
    assert await answer.json() == {
        "error": 9002,
        "data": {},
        "message": NOT_GRANTED["ErrorMessage"],
        **NOT_GRANTED,
    }
    assert controller.calls == []


async def test_an_ungranted_call_is_refused_before_its_fields_are_checked(gateway, controller):
    # An ungranted vendor learns nothing about the endpoint's rules: 9002, not 9006.
    answer = await gateway.post(
        "/api/v1/validate/plate", json={"api_token": BANNER_TOKEN, "client": CLIENT}
    )
    assert (await answer.json())["ErrorCode"] == 9002
    assert controller.calls == []


async def test_without_grants_no_vendor_reaches_a_pass_through_endpoint(stack_env, controller):
    settings = gateway_settings(stack_env, controller, "")
    async with TestClient(TestServer(create_app(settings))) as gateway:
        for endpoint in ("permits/stats", "profiles/types/list"):
            answer = await gateway.post(
                f"/api/{CLIENT}/v1/{endpoint}", json={"apiToken": VENDOR_TOKEN}
            )
            assert (answer.status, await answer.json()) == (403, NOT_GRANTED), endpoint
        # Pushes need no grant.
        pushed = await gateway.post(
            f"/api/{CLIENT}/v1/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
        )
        assert pushed.status == 200
    assert controller.calls == []


async def test_a_grant_allows_that_endpoint_and_no_other(stack_env, controller):
    settings = gateway_settings(stack_env, controller, "banner=validate/plate")
    async with TestClient(TestServer(create_app(settings))) as gateway:
        plate = await gateway.post(
            "/api/v1/validate/plate",
            json={"api_token": BANNER_TOKEN, "client": CLIENT, "plate": "ABC123"},
        )
        assert plate.status == 200
        overdue = await gateway.post(
            f"/api/{CLIENT}/v1/violations/send_overdue_to_collections",
            json={"apiToken": BANNER_TOKEN},
        )
        assert (await overdue.json())["ErrorCode"] == 9002
    assert [call.path for call in controller.calls] == ["/api/v1/validate/plate"]


@pytest.mark.parametrize(
    ("grants", "says"),
    [
        ("hotspot=permits/stats+permits/sttas", "unknown endpoint 'permits/sttas'"),
        ("hotspot=permits/push", "unknown endpoint 'permits/push'"),
        ("nobody=permits/stats", "unknown vendor 'nobody'"),
    ],
)
def test_a_grant_naming_an_unknown_vendor_or_endpoint_stops_the_gateway(stack_env, grants, says):
    settings = Settings.from_env({**stack_env, "PARKSTREAM_VENDOR_GRANTS": grants})
    with pytest.raises(SettingsError) as caught:
        create_app(settings)
    message = str(caught.value)
    assert message.startswith("PARKSTREAM_VENDOR_GRANTS: ")
    assert says in message
    assert "\n" not in message
