"""A table whose changelog acknowledges as Faust's topic does, over a real local store.

``send`` returns the acknowledgement's future; ``acknowledge(i)`` (or every send at once,
with ``auto_ack``) gives it the record's metadata and then runs the send's callback with
it, which is where parkstream applies a write to the local store (``foundation.worker``).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from foundation.worker.stores import MemoryStore


class Changelog:
    def __init__(self, partition: int, auto_ack: bool = False) -> None:
        self.partition = partition
        self.auto_ack = auto_ack
        self.sent: list[dict[str, Any]] = []
        self.acks: list[asyncio.Future[Any]] = []

    async def send(self, **record: Any) -> asyncio.Future[Any]:
        self.sent.append(record)
        self.acks.append(asyncio.get_running_loop().create_future())
        if self.auto_ack:
            self.acknowledge(len(self.sent) - 1)
        return self.acks[-1]

    def acknowledge(self, index: int) -> None:
        """Kafka acknowledged record ``index`` (its offset: its place in the changelog)."""
        future = self.acks[index]
        tp = TP("table-changelog", self.sent[index].get("partition", self.partition))
        future.set_result(SimpleNamespace(topic_partition=tp, offset=index))
        self.sent[index]["callback"](future)


class ChangelogTable:
    """A table whose local store is a real ``MemoryStore`` (``dict(table.data)`` reads it)."""

    def __init__(self, name: str, partition: int, auto_ack: bool) -> None:
        self.name = name
        self.data = MemoryStore(
            "parkstream-memory://", app=SimpleNamespace(), table=SimpleNamespace(name=name)
        )
        self.changelog_topic = Changelog(partition, auto_ack)
        self.key_serializer = "json"
        self.value_serializer = "json"

    def get(self, key: Any) -> Any:
        return self.data.get(key)


def acknowledged_future(metadata: Any = None) -> asyncio.Future[Any]:
    """A record's acknowledgement that Kafka has already given."""
    future = asyncio.get_running_loop().create_future()
    future.set_result(metadata)
    return future


def changelog_table(partition: int = 0, auto_ack: bool = False, name: str = "t") -> ChangelogTable:
    return ChangelogTable(name, partition, auto_ack)
