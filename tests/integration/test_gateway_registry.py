"""With PARKSTREAM_SCHEMA_REGISTRY_URL set, the gateway writes the Confluent wire format."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient, TestServer

from foundation.settings import Settings
from producers.gateway import create_app
from schemas.avro import CONFLUENT_MAGIC, codec
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import VEHICLE_PUSH_EXAMPLE
from tests.support.kafka import topic_messages


async def test_a_push_is_written_in_the_confluent_wire_format_through_the_registry(stack_env):
    url = f"mock://gateway-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({**stack_env, "PARKSTREAM_SCHEMA_REGISTRY_URL": url})
    async with TestClient(TestServer(create_app(settings))) as gateway:
        answer = await gateway.post(
            f"/api/{CLIENT}/v1/vehicles/push",
            json={"apiToken": VENDOR_TOKEN, **VEHICLE_PUSH_EXAMPLE},
        )
        assert answer.status == 200
    [message] = topic_messages(settings.kafka_bootstrap_servers, settings.topic("vehicles"))
    assert message.value()[:1] == CONFLUENT_MAGIC
    schema_id = int.from_bytes(message.value()[1:5], "big")
    registry = codec(url)
    assert registry._registry.client.get_schema(schema_id).schema_str
    name, event = registry.decode(message.value())
    assert (name, event["plate"], event["vendor"]) == ("VehicleEvent", "PL8RDR", "hotspot")
