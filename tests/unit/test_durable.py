"""The journal's write barrier: acknowledged or stopped, never silently hung."""

import asyncio

import pytest

from consumers.dispatch import journal
from streams import durable


async def test_an_acknowledged_record_returns():
    async def sending():
        future = asyncio.get_running_loop().create_future()
        future.set_result("metadata")
        return future

    await durable.acknowledged(sending())


async def test_a_record_never_acknowledged_fails_the_writer_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(durable, "ACK_TIMEOUT_SECONDS", 0.05)

    async def sending():
        return asyncio.get_running_loop().create_future()  # never resolved

    with pytest.raises(TimeoutError):
        await durable.acknowledged(sending())


async def test_a_durable_write_outside_an_event_is_refused_before_anything_changes():
    with pytest.raises(RuntimeError, match="current_event"):
        await durable.durable_set(journal, "cmd-1", {"state": "intent"})
    assert "cmd-1" not in journal.data


async def test_a_send_that_never_returns_fails_the_writer_too(monkeypatch):
    monkeypatch.setattr(durable, "ACK_TIMEOUT_SECONDS", 0.05)

    async def sending():
        await asyncio.Event().wait()  # stuck behind the partition's previous batch

    with pytest.raises(TimeoutError):
        await durable.acknowledged(sending())
