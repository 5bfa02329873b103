"""The worker's write barrier: acknowledged or stopped, never silently hung; never by an owner
that lost the partition; the local table never ahead of Kafka."""

import asyncio

import pytest
from faust.types import TP

from foundation.worker import durable
from foundation.worker.ownership import Ownership, Revoked
from tests.support.tables import acknowledged_future, changelog_table


def table():
    return changelog_table(partition=2)


@pytest.fixture
def lease():
    return Ownership(drain_seconds=1).lease(TP("commands", 2))


async def test_an_acknowledged_record_returns(lease):
    async def sending():
        return acknowledged_future("metadata")

    await durable.acknowledged(sending(), lease, "journal")


async def test_a_record_never_acknowledged_fails_the_writer_instead_of_hanging(monkeypatch, lease):
    monkeypatch.setattr(durable, "ACK_TIMEOUT_SECONDS", 0.05)

    async def sending():
        return asyncio.get_running_loop().create_future()  # never resolved

    with pytest.raises(durable.WriteTimeout):
        await durable.acknowledged(sending(), lease, "journal")


async def test_a_send_that_never_returns_fails_the_writer_too(monkeypatch, lease):
    monkeypatch.setattr(durable, "ACK_TIMEOUT_SECONDS", 0.05)

    async def sending():
        await asyncio.Event().wait()  # stuck behind the partition's previous batch

    with pytest.raises(durable.WriteTimeout):
        await durable.acknowledged(sending(), lease, "journal")


async def test_giving_up_on_an_acknowledgement_does_not_cancel_the_send(monkeypatch, lease):
    monkeypatch.setattr(durable, "ACK_TIMEOUT_SECONDS", 0.05)
    pending = asyncio.get_running_loop().create_future()
    with pytest.raises(durable.WriteTimeout):
        await durable.acknowledged_all([pending])
    assert not pending.cancelled()  # the producer still owns it


async def test_a_writer_cancelled_while_waiting_leaves_every_send_to_the_producer():
    pending = [asyncio.get_running_loop().create_future() for _ in range(3)]
    waiting = asyncio.create_task(durable.acknowledged_all(pending))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not any(ack.cancelled() for ack in pending)


async def test_a_record_kafka_refused_fails_the_writer_with_kafkas_error():
    refused = asyncio.get_running_loop().create_future()
    refused.set_exception(RuntimeError("MessageSizeTooLargeError"))
    never = asyncio.get_running_loop().create_future()  # a refusal does not wait for the rest
    with pytest.raises(RuntimeError, match="MessageSizeTooLarge"):
        await asyncio.wait_for(
            durable.acknowledged_all([acknowledged_future("metadata"), never, refused]), 5
        )


async def test_a_table_write_reaches_the_local_table_only_once_kafka_acknowledged_it(lease):
    journal = table()
    writing = asyncio.create_task(durable.durable_set(journal, "cmd-1", {"state": "intent"}, lease))
    await asyncio.sleep(0.01)
    [record] = journal.changelog_topic.sent
    assert record["partition"] == 2  # the partition of the record being processed
    assert dict(journal.data) == {}  # not yet: Kafka has not acknowledged it
    journal.changelog_topic.acknowledge(0)
    await writing
    assert dict(journal.data) == {"cmd-1": {"state": "intent"}}


async def test_a_deletion_is_a_real_tombstone(lease):
    journal = table()
    journal.data.apply_acknowledged(TP("t-changelog", 2), 0, "old", {"state": "done"})
    deleting = asyncio.create_task(durable.durable_delete(journal, ["old"], lease))
    await asyncio.sleep(0.01)
    [record] = journal.changelog_topic.sent
    assert record["value"] is None and record["value_serializer"] == "raw"
    journal.changelog_topic.acknowledge(0)
    await deleting
    assert dict(journal.data) == {}


async def test_an_owner_that_lost_the_partition_cannot_write():
    ownership = Ownership(drain_seconds=0.05)
    lease = ownership.lease(TP("commands", 0))
    await ownership.revoke()
    journal = table()
    with pytest.raises(Revoked):
        await durable.durable_set(journal, "cmd-1", {"state": "done"}, lease)
    assert journal.changelog_topic.sent == [] and dict(journal.data) == {}

    async def sending():
        raise AssertionError("must never be sent")

    with pytest.raises(Revoked):
        await durable.acknowledged(sending(), lease, "journal")


async def test_an_acknowledged_record_is_counted_in_its_kinds_latency(lease):
    before = durable.ACK_LATENCY.labels("results")._sum.get()

    async def sending():
        return acknowledged_future("metadata")  # aiokafka's own future: it names no topic

    await durable.acknowledged(sending(), lease, "results")
    await asyncio.sleep(0)  # the done-callback runs
    assert durable.ACK_LATENCY.labels("results")._sum.get() > before
