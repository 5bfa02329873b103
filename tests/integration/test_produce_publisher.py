"""The Python publisher (sync and async) against a real broker: the gateway's events."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.settings import Settings
from producers.gateway import create_app
from producers.publish import AsyncPublisher, Publisher
from schemas.avro import codec
from schemas.controller import ContractError
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE, PROFILE_PUSH_EXAMPLE
from tests.support.kafka import topic_messages


@pytest.fixture
def settings(stack_env) -> Settings:
    # The test broker (Tansu) loses some records of multi-record batches it acknowledged.
    return Settings.from_env({**stack_env, "PARKSTREAM_PRODUCER_BATCH_MESSAGES": "1"})


def events(settings: Settings, topic: str) -> list[tuple[bytes, dict]]:
    return [
        (m.key(), codec().decode(m.value())[1])
        for m in topic_messages(settings.kafka_bootstrap_servers, settings.topic(topic))
    ]


def test_the_sync_publisher_batches_and_reports_every_delivery(settings):
    reports = []
    with Publisher(settings, "hotspot") as publisher:
        accepted = [
            publisher.push_permit(
                {**PERMIT_PUSH_EXAMPLE, "permitNo": f"P-{n}"}, on_delivery=reports.append
            )
            for n in range(50)
        ]
        with pytest.raises(ContractError) as refused:
            publisher.push_permit({**PERMIT_PUSH_EXAMPLE, "LicencePlate": ""})
    assert refused.value.code == 9006
    assert len(reports) == 50
    assert all(report.delivered and report.offset is not None for report in reports)
    produced = events(settings, "sessions")
    assert sorted(key for key, _ in produced) == sorted(a.reference_id.encode() for a in accepted)
    assert {event["vendor"] for _, event in produced} == {"hotspot"}


async def test_the_async_publisher_returns_after_the_ack_and_reports_a_batch(settings):
    async with AsyncPublisher(settings, "banner") as publisher:
        report = await publisher.push_profile(PROFILE_PUSH_EXAMPLE)
        batch = await publisher.publish_many(
            "profiles/push",
            [
                {**PROFILE_PUSH_EXAMPLE, "unique_id": "u-1"},
                {**PROFILE_PUSH_EXAMPLE, "unique_id": ""},
                {**PROFILE_PUSH_EXAMPLE, "unique_id": "u-2"},
            ],
        )
    assert report.delivered
    assert [(r.delivered, r.error_code) for r in batch] == [
        (True, None),
        (False, 9013),
        (True, None),
    ]
    assert sorted(key for key, _ in events(settings, "users")) == [b"tester23", b"u-1", b"u-2"]


async def test_a_permit_published_from_python_is_the_event_the_gateway_makes(settings):
    with Publisher(settings, "hotspot") as publisher:
        from_python = publisher.push_permit(PERMIT_PUSH_EXAMPLE)
    async with TestClient(TestServer(create_app(settings))) as gateway:
        answer = await gateway.post(
            f"/api/{CLIENT}/v1/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
        )
        from_http = await answer.json()
    # The same vendor, the same permit: the same reference id and the same event.
    assert from_http == from_python.answer
    first, second = (event for _, event in events(settings, "sessions"))
    ignore = {"received_at"}
    assert {k: v for k, v in first.items() if k not in ignore} == {
        k: v for k, v in second.items() if k not in ignore
    }


def test_an_update_of_another_vendors_permit_is_refused_before_kafka(settings):
    with Publisher(settings, "hotspot") as hotspot:
        reference = hotspot.push_permit(PERMIT_PUSH_EXAMPLE).reference_id
    with Publisher(settings, "banner") as banner, pytest.raises(ContractError) as refused:
        banner.delete_permit({"referenceID": reference})
    assert refused.value.code == 9009
    assert [event["action"] for _, event in events(settings, "sessions")] == ["CREATE"]
