"""Writes that return only once Kafka has acknowledged them: the worker's only way to write.

Faust's table writes (``table[key] = value``) go through its producer buffer, and two
things about that buffer broke parkstream:

* it is no barrier: ``app.producer.flush()`` gives up after 0.1 s without progress
  (``ProducerBuffer.flush_atmost``) with records still queued, and records of different
  partitions are acknowledged in any order (a SIGKILL once left a journal ``done`` entry
  whose session state, written before it, was lost);
* while it holds more than 100 records, Faust stops handing records to *every* stream
  until it drains (``ProducerBuffer.wait_until_ebb``, called for each record fetched), so
  one agent writing faster than the broker acknowledges slows or stops all the others
  (``producer buffer full`` in the log).

So nothing in parkstream writes through it. Each write here sends the changelog record
(or topic record) itself to the partition of the record being processed; the local store
is updated by the acknowledgement's callback (``stores``: in changelog order, and on disk
with the partition's persisted offset in one batch), and the write returns once every
record is acknowledged, with a bound: a write not acknowledged in ``ACK_TIMEOUT_SECONDS``
raises ``WriteTimeout`` and the caller stops the worker (a restart resumes from the
journal), never a silent hang. Every write is made
under the lease of the record it is for (``foundation.worker.ownership``): an owner that lost the
partition cannot write.

A key's writes are durable in the order they were made: records of one partition are
sent in order and acknowledged in order.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import faust
from prometheus_client import Counter, Histogram

from foundation.worker.ownership import Lease

ACK_LATENCY = Histogram(
    "parkstream_write_ack_seconds",
    "From a worker's record handed to the producer to Kafka's acknowledgement, by record: "
    "the table changelogs (journal, sessions, dedupe, zone_stats) and topics (commands, "
    "results, dlq).",
    ["record"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
PRUNED = Counter(
    "parkstream_table_entries_pruned_total",
    "Table entries dropped by their retention (journal, sessions, dedupe, zone_stats).",
    ["table"],
)
for _table in ("journal", "sessions", "dedupe", "zone_stats"):
    PRUNED.labels(_table)

# A record not admitted by the producer, or not acknowledged, in this time stops the worker.
ACK_TIMEOUT_SECONDS = 60.0


class WriteTimeout(RuntimeError):
    """Kafka did not acknowledge a record in ``ACK_TIMEOUT_SECONDS``: stop the worker."""


def _not_acknowledged() -> WriteTimeout:
    return WriteTimeout(f"record not acknowledged in {ACK_TIMEOUT_SECONDS:.0f} s")


async def sent(sending: Awaitable[Any], lease: Lease, record: str) -> asyncio.Future[Any]:
    """Await ``topic.send(...)`` (the producer admits the record: it is queued, in order);
    return the future of its acknowledgement, timed as ``record`` (``ACK_LATENCY``: a table
    name, or ``commands``, ``results``, ``dlq``). Raises ``Revoked`` for a void lease."""
    try:
        lease.check_write()
    except BaseException:
        if asyncio.iscoroutine(sending):
            sending.close()  # never started: nothing was sent
        raise
    began = time.perf_counter()
    try:  # asyncio.timeout, not wait_for: the same bound without a task per write
        async with asyncio.timeout(ACK_TIMEOUT_SECONDS):
            acked: asyncio.Future[Any] = await sending
    except TimeoutError:
        raise _not_acknowledged() from None
    acked.add_done_callback(functools.partial(_observe_ack, _ack_latency(record), began))
    return acked


@functools.cache
def _ack_latency(record: str) -> Any:
    """``ACK_LATENCY``'s child for ``record``, looked up once (a few record names)."""
    return ACK_LATENCY.labels(record)


def _observe_ack(latency: Any, began: float, acked: asyncio.Future[Any]) -> None:
    if not acked.cancelled() and acked.exception() is None:
        latency.observe(time.perf_counter() - began)


async def acknowledged_all(acks: Iterable[asyncio.Future[Any]]) -> None:
    """Wait for every acknowledgement; raise the first refusal as soon as there is one.

    Never cancels an acknowledgement (``asyncio.wait`` leaves them alone when the caller
    gives up or is cancelled): the producer owns the records it admitted.
    """
    waiting = list(acks)
    pending = [ack for ack in waiting if not ack.done()]
    if pending and not any(_refused(ack) for ack in waiting):
        _, left = await asyncio.wait(
            pending, timeout=ACK_TIMEOUT_SECONDS, return_when=asyncio.FIRST_EXCEPTION
        )
        if left and not any(_refused(ack) for ack in pending):
            raise _not_acknowledged()
    for ack in waiting:
        if ack.done():
            ack.result()  # a refusal (or a cancellation by the producer) raises here


def _refused(ack: asyncio.Future[Any]) -> bool:
    return ack.done() and not ack.cancelled() and ack.exception() is not None


async def acknowledged(sending: Awaitable[Any], lease: Lease, record: str) -> None:
    """Send one record (``topic.send(...)``) and return once Kafka acknowledged it."""
    await acknowledged_all([await sent(sending, lease, record)])


async def send_table_writes(
    table: faust.Table[Any, Any], writes: Sequence[tuple[Any, Any]], lease: Lease
) -> list[asyncio.Future[Any]]:
    """Send the changelog records of ``(key, value)`` writes (``value`` ``None``: a deletion, a
    tombstone), in order, to the lease's partition; return their acknowledgements.

    Each write is applied to the local table by its acknowledgement's callback
    (``stores``), so the local table never holds what Kafka does not (a revoked partition
    may come back to this worker, which then recovers it on top of what it holds).
    """
    acks = []
    store = table.data
    for key, value in writes:
        sending = table.changelog_topic.send(
            key=key,
            value=value,
            partition=lease.partition,
            key_serializer=table.key_serializer,
            # A deletion is a real tombstone (a null value), not the JSON text "null".
            value_serializer="raw" if value is None else table.value_serializer,
            callback=functools.partial(_apply_acknowledged, store, key, value),
        )
        acks.append(await sent(sending, lease, table.name))
    return acks


def _apply_acknowledged(store: Any, key: Any, value: Any, acked: Any) -> None:
    """The callback of an acknowledged changelog record: apply it to the local store."""
    metadata = acked.result()
    store.apply_acknowledged(metadata.topic_partition, metadata.offset, key, value)


async def durable_write(
    table: faust.Table[Any, Any], writes: Sequence[tuple[Any, Any]], lease: Lease
) -> None:
    """Write to ``table`` (see ``send_table_writes``), returning once Kafka has every record.

    The records go to the partition of the record being processed, as Faust's own table
    writes do, so the table stays co-partitioned with its source topic and a new owner of
    that partition recovers it from the changelog.
    """
    await acknowledged_all(await send_table_writes(table, writes, lease))


async def durable_set(table: faust.Table[Any, Any], key: Any, value: Any, lease: Lease) -> None:
    """``table[key] = value``, returning once its changelog record is acknowledged."""
    await durable_write(table, [(key, value)], lease)


async def durable_delete(table: faust.Table[Any, Any], keys: Iterable[Any], lease: Lease) -> None:
    """``del table[key]`` for each key, as tombstones in the changelog, acknowledged."""
    await durable_write(table, [(key, None) for key in keys], lease)


async def durable_prune(table: faust.Table[Any, Any], keys: Sequence[Any], lease: Lease) -> None:
    """Drop ``keys`` from ``table`` for its retention (``durable_delete``), counted by table."""
    if keys:
        await durable_delete(table, keys, lease)
        PRUNED.labels(table.name).inc(len(keys))
