"""What the one-machine broker (Tansu) does that Kafka does not, pinned (docs/local-broker.md).

If one of these starts failing, the broker changed: update docs/local-broker.md's row.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from foundation.broker import LocalBroker

SESSION_TIMEOUT_MS = 6000


async def _assigned(bootstrap_servers: str, topic: str, group: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=100)
    return consumer


async def test_a_stopped_first_member_holds_its_partitions_until_its_session_times_out(
    broker: LocalBroker,
) -> None:
    topic, group = f"leave-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)

    first = await _assigned(broker.bootstrap_servers, topic, group)
    # Kafka numbers a group's first generation 1; Tansu numbers it 0, and aiokafka sends
    # LeaveGroup on stop only from generation 1 on (GroupCoordinator._maybe_leave_group).
    assert first._coordinator.generation == 0
    await first.stop()

    stopped = time.perf_counter()
    second = await asyncio.wait_for(_assigned(broker.bootstrap_servers, topic, group), 60)
    waited = time.perf_counter() - stopped
    # Its successor waits for the stopped member's session to time out, then for Tansu's
    # join delay (11 s here; after a LeaveGroup, the join delay alone: 5 s).
    assert waited >= SESSION_TIMEOUT_MS / 1000 + 2
    assert second._coordinator.generation >= 1
    await second.stop()
