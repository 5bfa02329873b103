"""Edge limits of the gateway: body size, unparsable input, and a broker that goes away."""

from __future__ import annotations

import json
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.broker import LocalBroker, free_port
from foundation.kafka import ensure_topics
from foundation.settings import Settings
from producers.gateway import GATEWAY_KEY, create_app, create_ops_app
from schemas.avro import codec
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.kafka import topic_messages

PUSH = f"/api/{CLIENT}/v1/permits/push"
BODY = {"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
UNPARSABLE = {"ErrorCode": 9003, "ErrorMessage": "Could not parse the request."}


@pytest.fixture
def small_settings(stack_env):
    return Settings.from_env({**stack_env, "PARKSTREAM_GATEWAY_MAX_BODY_BYTES": "1024"})


@pytest.fixture
async def gateway(small_settings):
    async with TestClient(TestServer(create_app(small_settings))) as client:
        yield client


def sessions(settings):
    return topic_messages(settings.kafka_bootstrap_servers, settings.topic("sessions"))


async def test_a_body_over_the_limit_gets_413_with_a_controller_error_and_produces_nothing(
    gateway, small_settings
):
    body = {**BODY, "padding": "x" * 2000}
    answer = await gateway.post(PUSH, json=body)
    assert answer.status == 413
    assert await answer.json() == UNPARSABLE
    assert sessions(small_settings) == []


async def test_a_chunked_body_over_the_limit_gets_413_too(gateway, small_settings):
    async def chunks():
        data = json.dumps({**BODY, "padding": "x" * 4000}).encode()
        for start in range(0, len(data), 500):
            yield data[start : start + 500]

    answer = await gateway.post(PUSH, data=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status == 413
    assert await answer.json() == UNPARSABLE
    assert sessions(small_settings) == []


async def test_a_body_at_the_limit_is_accepted(gateway, small_settings):
    data = json.dumps({**BODY, "padding": ""}).encode()
    data = json.dumps({**BODY, "padding": "x" * (1024 - len(data))}).encode()
    assert len(data) == 1024
    answer = await gateway.post(PUSH, data=data, headers={"Content-Type": "application/json"})
    assert answer.status == 200


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[1, 2]", b'"apiToken"', b"NaN", b"\xff\xfe{}", b'{"apiToken": "a"} trailing'],
    ids=["empty", "truncated", "array", "string", "nan", "not-utf8", "trailing-garbage"],
)
async def test_a_body_that_is_not_a_json_object_gets_9003(gateway, small_settings, data):
    answer = await gateway.post(PUSH, data=data, headers={"Content-Type": "application/json"})
    assert (answer.status, await answer.json()) == (400, UNPARSABLE)
    assert sessions(small_settings) == []


# ------------------------------------------------------------------------- broker outage


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own, on a fixed port, that the test may stop and restart."""
    port = free_port()
    running = [LocalBroker(port=port, log_path=tmp_path / "broker.log").start()]
    yield running
    running[-1].stop()


async def test_503_while_the_broker_is_down_and_success_once_it_is_back(own_broker, stack_env):
    env = {
        **stack_env,
        "PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS": own_broker[0].bootstrap_servers,
        "PARKSTREAM_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
    }
    settings = Settings.from_env(env)
    ensure_topics(settings)
    app = create_app(settings, delivery_timeout_ms=3000)
    ops = TestClient(TestServer(create_ops_app(app[GATEWAY_KEY])))
    async with TestClient(TestServer(app)) as gateway, ops:
        before = await gateway.post(PUSH, json=BODY)
        assert before.status == 200

        own_broker[0].stop()
        down = await gateway.post(PUSH, json={**BODY, "zone": "Lot 5"})
        assert down.status == 503
        assert int(down.headers["Retry-After"]) > 0
        assert "reference_id" not in await down.json()
        assert (await ops.get("/readyz")).status == 503

        # A new, empty broker on the same port: the gateway re-creates its topics.
        own_broker.append(LocalBroker(port=own_broker[0].port).start())
        after = await gateway.post(PUSH, json={**BODY, "zone": "Lot 6"})
        assert after.status == 200
        again = await gateway.post(PUSH, json={**BODY, "zone": "Lot 7"})
        assert again.status == 200

    [*messages] = sessions(settings)
    zones = sorted(codec().decode(m.value())[1]["zone"] for m in messages)
    assert zones == ["Lot 6", "Lot 7"]  # the new broker holds what was sent after it came
    partitions = topic_partitions(settings)
    assert partitions == settings.topic_partitions  # re-created with ours, not the broker's


def topic_partitions(settings: Settings) -> int:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    topic = settings.topic("sessions")
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
