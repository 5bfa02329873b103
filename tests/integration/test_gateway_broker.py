"""The gateway against a real broker: what a vendor's push puts in Kafka, and what it does not."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.kafka import AsyncProducer
from producers.gateway import GATEWAY_KEY, create_app, create_ops_app
from schemas.avro import codec
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.kafka import topic_messages

PUSH = f"/api/{CLIENT}/v1/permits/push"


@pytest.fixture
async def gateway(stack_settings):
    with AsyncProducer(stack_settings.kafka_bootstrap_servers) as producer:
        async with TestClient(TestServer(create_app(stack_settings, producer))) as client:
            yield client


@pytest.fixture
async def ops(gateway):
    """The operations port of the same gateway."""
    async with TestClient(TestServer(create_ops_app(gateway.app[GATEWAY_KEY]))) as client:
        yield client


async def test_documented_push_is_answered_with_a_reference_after_it_is_in_kafka(
    gateway, stack_settings
):
    answer = await gateway.post(PUSH, json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE})
    body = await answer.json()
    assert answer.status == 200
    assert body == {
        "status": "success",
        "reference_id": body["reference_id"],
        "InternalReferenceID": body["reference_id"],
    }
    [message] = topic_messages(
        stack_settings.kafka_bootstrap_servers, stack_settings.topic("sessions")
    )
    assert message.key() == body["reference_id"].encode()
    _, event = codec().decode(message.value(), expected="ParkingSessionEvent")
    assert event["session_id"] == body["reference_id"]
    assert event["action"] == "CREATE"
    assert event["vendor"] == VENDOR
    assert event["plate"] == "PL8RDR"
    assert event["amount"] == Decimal("14.50")
    assert event["currency"] == "CAD"
    assert event["zone"] == "Lot 4"
    assert event["permit_no"] == "L4-1138"
    assert event["start_time"] == datetime(2018, 7, 2, 9, 0, tzinfo=UTC)
    assert event["end_time"] == datetime(2018, 7, 2, 9, 30, tzinfo=UTC)


async def test_the_vendor_token_never_enters_kafka(gateway, stack_settings):
    await gateway.post(PUSH, json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE})
    [message] = topic_messages(
        stack_settings.kafka_bootstrap_servers, stack_settings.topic("sessions")
    )
    assert VENDOR_TOKEN.encode() not in message.value()
    assert VENDOR_TOKEN.encode() not in (message.key() or b"")


async def test_an_offset_bearing_time_is_converted_to_utc(gateway, stack_settings):
    body = {
        **PERMIT_PUSH_EXAMPLE,
        "startTime": "2018-07-02T05:00:00-04:00",
        "apiToken": VENDOR_TOKEN,
    }
    answer = await gateway.post(PUSH, json=body)
    assert answer.status == 200
    [message] = topic_messages(
        stack_settings.kafka_bootstrap_servers, stack_settings.topic("sessions")
    )
    _, event = codec().decode(message.value())
    assert event["start_time"] == datetime(2018, 7, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"apiToken": "not-a-vendor-token", **PERMIT_PUSH_EXAMPLE},
            9002,
            "The supplied API token does not have permission to perform that request.",
        ),
        (
            {"apiToken": CONTROLLER_TOKEN, **PERMIT_PUSH_EXAMPLE},
            9002,
            "The supplied API token does not have permission to perform that request.",
        ),
        (PERMIT_PUSH_EXAMPLE, 9001, "API Token is missing from the request."),
        (
            {"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE, "LicencePlate": ""},
            9006,
            "Plate is a required field.",
        ),
        (
            {"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE, "endTime": "02/07/2018"},
            9005,
            "The end time value is invalid.",
        ),
    ],
    ids=["wrong-token", "controller-token", "no-token", "no-plate", "bad-end-time"],
)
async def test_a_refused_push_gets_the_documented_error_and_produces_nothing(
    gateway, stack_settings, body, code, message
):
    answer = await gateway.post(PUSH, json=body)
    assert answer.status >= 400
    assert await answer.json() == {"ErrorCode": code, "ErrorMessage": message}
    assert (
        topic_messages(stack_settings.kafka_bootstrap_servers, stack_settings.topic("sessions"))
        == []
    )


async def test_a_body_that_is_not_json_gets_9003(gateway, stack_settings):
    answer = await gateway.post(PUSH, data=b"apiToken=abc", headers={"Content-Type": "text/plain"})
    assert await answer.json() == {
        "ErrorCode": 9003,
        "ErrorMessage": "Could not parse the request.",
    }
    assert (
        topic_messages(stack_settings.kafka_bootstrap_servers, stack_settings.topic("sessions"))
        == []
    )


async def test_a_valid_token_under_another_client_code_gets_9034(gateway, stack_settings):
    answer = await gateway.post(
        "/api/OC-OTHER/v1/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
    )
    assert (await answer.json())["ErrorCode"] == 9034
    assert (
        topic_messages(stack_settings.kafka_bootstrap_servers, stack_settings.topic("sessions"))
        == []
    )


async def test_readyz_is_ready_while_the_broker_answers(ops):
    answer = await ops.get("/readyz")
    assert answer.status == 200
