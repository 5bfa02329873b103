"""Read what is in a topic (no consumer group: no ~20 s librdkafka group join)."""

from __future__ import annotations

from confluent_kafka import Message

from foundation.kafka import read_topic


def topic_messages(bootstrap: str, topic: str, timeout: float = 10.0) -> list[Message]:
    """Every record now in ``topic``."""
    return read_topic(bootstrap, topic, timeout)
