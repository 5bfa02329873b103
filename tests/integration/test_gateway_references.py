"""Reference ids at the gateway: vendor isolation and safe retries (real broker)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from producers.gateway import create_app
from schemas.avro import codec
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE, VEHICLE_PUSH_EXAMPLE
from tests.support.kafka import topic_messages

HOTSPOT = {"apiToken": VENDOR_TOKEN}
BANNER = {"apiToken": "banner-test-token-0002"}  # the second vendor of stack_env


def url(endpoint: str) -> str:
    return f"/api/{CLIENT}/v1/{endpoint}"


@pytest.fixture
async def gateway(stack_settings):
    async with TestClient(TestServer(create_app(stack_settings))) as client:
        yield client


def session_events(settings):
    return [
        codec().decode(m.value(), "ParkingSessionEvent")[1]
        for m in topic_messages(settings.kafka_bootstrap_servers, settings.topic("sessions"))
    ]


async def push(gateway, token, body=PERMIT_PUSH_EXAMPLE, headers=None):
    answer = await gateway.post(url("permits/push"), json={**token, **body}, headers=headers)
    assert answer.status == 200
    return (await answer.json())["reference_id"]


async def test_a_vendor_can_never_update_or_delete_another_vendors_permit(gateway, stack_settings):
    reference = await push(gateway, HOTSPOT)
    update = await gateway.post(
        url("permits/update"), json={**BANNER, "referenceID": reference, "Amount": "1.00"}
    )
    delete = await gateway.post(url("permits/delete"), json={**BANNER, "referenceID": reference})
    for answer in (update, delete):
        assert answer.status == 404
        assert await answer.json() == {"ErrorCode": 9009, "ErrorMessage": "Record not found."}
    assert [e["action"] for e in session_events(stack_settings)] == ["CREATE"]


async def test_the_owner_can_update_and_delete_its_permit(gateway, stack_settings):
    reference = await push(gateway, HOTSPOT)
    update = await gateway.post(
        url("permits/update"), json={**HOTSPOT, "referenceid": reference, "Amount": "1.00"}
    )
    delete = await gateway.post(url("permits/delete"), json={**HOTSPOT, "reference_id": reference})
    assert (update.status, delete.status) == (200, 200)
    events = session_events(stack_settings)
    assert sorted(e["action"] for e in events) == ["CREATE", "DELETE", "UPDATE"]
    assert {e["vendor"] for e in events} == {"hotspot"}


async def test_the_same_body_sent_twice_gets_the_same_reference_id(gateway, stack_settings):
    first = await push(gateway, HOTSPOT)
    again = await push(gateway, HOTSPOT)
    assert first == again
    events = session_events(stack_settings)
    # Both events are in Kafka; they carry one dedupe key and one event id, so the
    # worker applies them once.
    assert len(events) == 2
    assert events[0]["event_id"] == events[1]["event_id"]
    assert events[0]["idempotency_key"] == events[1]["idempotency_key"]


async def test_the_same_body_in_other_aliases_is_the_same_request(gateway):
    first = await push(gateway, HOTSPOT)
    respelled = {
        "amount": "14.50",
        "currency": "CAD",
        "plate": "PL8RDR",
        "ParkingZoneName": "Lot 4",
        "TicketNumber": "L4-1138",
        "StartDateUtc": "2018-07-02T05:00:00-04:00",
        "EndDateUtc": "2018-07-02T09:30:00Z",
    }
    assert await push(gateway, HOTSPOT, respelled) == first


async def test_two_vendors_sending_the_same_body_get_different_reference_ids(gateway):
    assert await push(gateway, HOTSPOT) != await push(gateway, BANNER)


async def test_an_idempotency_key_makes_a_retry_the_same_request_whatever_the_body(gateway):
    key = {"Idempotency-Key": "7d0f8f9e-1f1e-4a47-8a59-7b0e33cfd001"}
    first = await push(gateway, HOTSPOT, headers=key)
    retried = await push(gateway, HOTSPOT, {**PERMIT_PUSH_EXAMPLE, "zone": "Lot 5"}, key)
    other_key = await push(
        gateway, HOTSPOT, headers={"Idempotency-Key": "7d0f8f9e-1f1e-4a47-8a59-7b0e33cfd002"}
    )
    assert first == retried
    assert other_key != first


async def test_a_retried_vehicle_push_gets_the_same_receipt_number(gateway):
    answers = []
    for _ in range(2):
        answer = await gateway.post(url("vehicles/push"), json={**HOTSPOT, **VEHICLE_PUSH_EXAMPLE})
        answers.append((await answer.json())["vehicle_id_id"])
    assert answers[0] == answers[1]
