"""Counting a Faust process's writes, for ``benchmarks/throughput.py``.

Faust produces through aiokafka. Its sender keeps at most one produce request in flight
per broker, each carrying at most one batch per partition; with
``PARKSTREAM_PRODUCER_BATCH_MESSAGES=1`` (``producer_max_batch_size=1``) a batch holds one
record. ``count_writes()`` wraps two aiokafka calls, in Prometheus metrics of the process's
default registry (the worker's ``/metrics`` shows them beside its own):

- the sender's request handler: every produce request, its records and its round trip;
- ``AIOKafkaProducer.send``: each record's time from being handed to the producer (its
  wait to be admitted included: with one record per batch, a partition's next record waits
  for the previous one to be sent) to Kafka's acknowledgement, by record (``record_kind``
  of its topic). The worker's own ``parkstream_write_ack_seconds`` times the same span
  from the record handed to Faust; the plain Faust baseline has no such metric, so both
  workers are timed here the same way.

It also times the process's garbage collections (``gc.callbacks``, by generation): their
time is spent inside whatever code allocated, so a sampling profiler cannot show it.

Benchmark-only: nothing in parkstream imports this.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer.sender import SendProduceReqHandler
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "parkstream_bench_produce_requests_total", "Produce requests sent (benchmark wrapper)."
)
RECORDS = Counter(
    "parkstream_bench_produce_records_total",
    "Records in the produce requests sent (benchmark wrapper).",
)
SECONDS = Counter(
    "parkstream_bench_produce_request_seconds_total",
    "Round trips of the produce requests sent, added up (benchmark wrapper).",
)
ACKS = Histogram(
    "parkstream_bench_ack_seconds",
    "From a record handed to aiokafka to its acknowledgement, by record (benchmark wrapper).",
    ["record"],
    buckets=(
        *(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05),
        *(0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 10),
    ),
)

GC_SECONDS = Counter(
    "parkstream_bench_gc_seconds",
    "Time spent in garbage collections, by generation (benchmark wrapper).",
    ["generation"],
)


def record_kind(topic: str) -> str:
    """The short name of a topic a worker writes: ``journal`` for the journal table's
    changelog, ``results`` for ``<prefix>parkstream.results.v1``."""
    if topic.endswith("-changelog"):
        return topic.removesuffix("-changelog").rsplit("-", 1)[-1]
    parts = topic.split(".")
    return parts[-2] if len(parts) >= 3 else topic


def count_writes() -> None:
    """Count every produce request and time every record this process sends from now on."""
    if getattr(SendProduceReqHandler.do, "_counted", False):
        return
    do, send = SendProduceReqHandler.do, AIOKafkaProducer.send

    async def counted_do(self: Any, node_id: Any) -> Any:
        REQUESTS.inc()
        RECORDS.inc(sum(batch.record_count for batch in self._batches.values()))
        began = time.perf_counter()
        try:
            return await do(self, node_id)
        finally:
            SECONDS.inc(time.perf_counter() - began)

    async def timed_send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        acked = await send(self, topic, *args, **kwargs)
        acked.add_done_callback(functools.partial(_observe, record_kind(topic), began))
        return acked

    counted_do._counted = True  # type: ignore[attr-defined]
    SendProduceReqHandler.do = counted_do
    AIOKafkaProducer.send = timed_send
    gc.callbacks.append(_time_collection)


_collection_began = 0.0


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    global _collection_began
    if phase == "start":
        _collection_began = time.perf_counter()
    else:
        GC_SECONDS.labels(str(info["generation"])).inc(time.perf_counter() - _collection_began)


def _observe(record: str, began: float, acked: asyncio.Future[Any]) -> None:
    if not acked.cancelled() and acked.exception() is None:
        ACKS.labels(record).observe(time.perf_counter() - began)
