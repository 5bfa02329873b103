"""A Faust table whose writes can be awaited until its changelog has them.

Faust sends table changes to the changelog in the background; the only way to
wait for them is ``app.producer.flush()``, which waits for *everything* buffered
and polls while doing so (a third of the worker's CPU when every command waited
on it). ``DurableTable.written(key)`` waits for the one record that matters.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage


class DurableTable(faust.Table):
    """``table[key] = value``, then ``await table.written(key)`` for the changelog's ack."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unacked: dict[Any, FutureMessage] = {}

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, *args: Any, **kwargs: Any
    ) -> FutureMessage:
        fut = super().send_changelog(partition, key, value, *args, **kwargs)
        self._unacked[key] = fut
        fut.add_done_callback(lambda done: self._forget(key, done))
        return fut

    def _forget(self, key: Any, fut: asyncio.Future[Any]) -> None:
        if self._unacked.get(key) is fut:
            del self._unacked[key]

    async def written(self, key: Any) -> None:
        """Return once the latest write of ``key`` is in the changelog (raise if it failed)."""
        fut = self._unacked.get(key)
        if fut is not None:
            await fut


def durable_table(app: faust.App, name: str, **kwargs: Any) -> DurableTable:
    """Declare a ``DurableTable`` on ``app`` (as ``app.Table`` does for a plain one)."""
    table = DurableTable(app, name=name, **kwargs)
    app.tables.add(table)
    return table
