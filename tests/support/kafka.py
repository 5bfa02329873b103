"""Read what is in a topic, without a consumer group (no ~20 s librdkafka group join)."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Message, TopicPartition


def topic_messages(bootstrap: str, topic: str, timeout: float = 10.0) -> list[Message]:
    """Every record now in ``topic``, read by explicit assignment from offset 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        ends = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=timeout)[1]
            for tp in partitions
        }
        wanted = sum(ends.values())
        if wanted == 0:
            return []
        consumer.assign(partitions)
        out: list[Message] = []
        while len(out) < wanted:
            msg = consumer.poll(timeout)
            if msg is None:
                raise TimeoutError(f"read {len(out)} of {wanted} records from {topic}")
            if msg.error() is None:
                out.append(msg)
        return out
    finally:
        consumer.close()
