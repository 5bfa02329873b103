"""Writes that return only once Kafka has acknowledged them: the journal's barrier.

Faust's table writes go through a producer buffer, and ``app.producer.flush()`` is
not a barrier for them: the buffer's flush gives up after 0.1 s without progress
(``ProducerBuffer.flush_atmost``) and returns with records still queued, and records
of different partitions are acknowledged in any order. Measured here: a SIGKILL in a
two-worker crash test left a push's journal entry ``done`` on the broker while the
session state written before it (the Controller's reference id) was lost, so the
session's update was dead-lettered as "reference unknown".

``durable_set`` updates the table's local store and sends the changelog record
itself, directly to the producer, then waits for that one record's acknowledgement;
``acknowledged`` does the same for a ``topic.send``. A key's writes are therefore
durable in the order they were made, without waiting for anybody else's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import faust
from faust.streams import current_event

# A record not acknowledged in this time stops the worker (the key's task fails and the
# dispatcher crashes the app); a restart resumes from the journal. Never a silent hang.
ACK_TIMEOUT_SECONDS = 60.0


async def acknowledged(sending: Awaitable[Any]) -> None:
    """Await ``topic.send(...)`` and then the broker's acknowledgement of that record.

    One timeout covers both: the send itself can wait for the partition's previous
    batch (aiokafka), and that wait is bounded only by the producer's request timeout.
    """

    async def sent_and_acknowledged() -> None:
        pending = await sending
        await pending

    await asyncio.wait_for(sent_and_acknowledged(), ACK_TIMEOUT_SECONDS)


def current_partition() -> int:
    """The partition of the event being processed (where its table writes belong)."""
    event = current_event()
    if event is None:
        raise RuntimeError("a durable write needs the event being processed (faust current_event)")
    return event.message.partition


async def durable_set(table: faust.Table, key: Any, value: Any) -> None:
    """``table[key] = value``, returning once its changelog record is acknowledged.

    The record goes to the partition of the event being processed, as Faust's own
    table writes do, so the table stays co-partitioned with its source topic and a
    new owner of that partition recovers it from the changelog.
    """
    partition = current_partition()
    table.data[key] = value
    await acknowledged(table.changelog_topic.send(key=key, value=value, partition=partition))
