"""Kafka plumbing shared by every process: topic creation and an asyncio-friendly producer.

Thin wrappers around ``confluent_kafka`` (quix-streams style): librdkafka
configuration stays one dict with the library's own key names.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from parkstream.settings import TOPICS, Settings

log = logging.getLogger(__name__)

# Same partitioner as the Java client and aiokafka (Faust), so a key lands on the
# same partition number whichever of our processes produced it.
PARTITIONER = "murmur2_random"


class BrokerUnavailable(RuntimeError):
    """The broker did not take a record (down, timed out, or refused it)."""


def ensure_topics(settings: Settings, timeout: float = 15.0) -> list[str]:
    """Create parkstream's topics that do not exist yet; return the names created.

    Existing topics are left as they are (their partition count is not changed).
    """
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [settings.topic(name) for name in TOPICS]
    missing = [
        NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=1)
        for name in wanted
        if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    log.info('topics created names="%s"', ",".join(created))
    return created


class AsyncProducer:
    """A ``confluent_kafka.Producer`` whose ``send`` is awaited until the broker acknowledges.

    acks=all and idempotence are on, so an awaited ``send`` means the record is
    durably in the topic exactly once. A background thread serves delivery
    reports. Use as a context manager, or ``start()`` / ``close()``.
    """

    def __init__(self, bootstrap_servers: str, *, delivery_timeout_ms: int = 10_000, **extra: Any):
        self.config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
            "linger.ms": 2,
            "delivery.timeout.ms": delivery_timeout_ms,
            "socket.connection.setup.timeout.ms": min(delivery_timeout_ms, 5_000),
            **extra,
        }
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> AsyncProducer:
        if self._producer is None:
            self._producer = Producer(self.config)
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
            self._poller.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            assert self._producer is not None
            self._producer.poll(0.1)

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Message:
        """Produce one record; return once the broker acknowledged it.

        Raises ``BrokerUnavailable`` when it was not acknowledged within the
        delivery timeout or was refused.
        """
        producer = self.start()._producer
        assert producer is not None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Message] = loop.create_future()

        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                outcome: Any = BrokerUnavailable(f"broker did not take the record: {err.str()}")
                loop.call_soon_threadsafe(_settle, done, outcome, True)
            else:
                loop.call_soon_threadsafe(_settle, done, msg, False)

        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, on_delivery=report)
                break
            except BufferError:
                # Local queue full: let delivery reports drain it, then try again.
                await asyncio.sleep(0.01)
            except KafkaException as exc:
                raise BrokerUnavailable(str(exc)) from exc
        return await done

    def list_topics(self, timeout: float = 2.0) -> list[str]:
        """Topic names the broker reports (blocking); ``BrokerUnavailable`` when it does not answer."""
        producer = self.start()._producer
        assert producer is not None
        try:
            return list(producer.list_topics(timeout=timeout).topics)
        except KafkaException as exc:
            raise BrokerUnavailable(str(exc)) from exc

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding records; return how many are still undelivered."""
        return 0 if self._producer is None else self._producer.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is None:
            return
        self.flush(timeout)
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        self._producer = None

    def __enter__(self) -> AsyncProducer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _settle(future: asyncio.Future[Any], value: Any, is_error: bool) -> None:
    if future.done():
        return
    if is_error:
        future.set_exception(value)
    else:
        future.set_result(value)


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> list[Message]:
    """Every record now in ``topic``, oldest first per partition; no consumer group is joined.

    Reads each partition until the broker says it is at the end (partition EOF, from
    the high watermark in fetch answers). It does not trust ListOffsets: the local
    Tansu broker answers it wrongly for batches of several records.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"parkstream-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end: set[int] = set()
        records: list[Message] = []
        while len(at_end) < len(partitions):
            msg = consumer.poll(timeout)
            if msg is None:
                raise TimeoutError(f"{topic}: no answer from the broker in {timeout:.0f} s")
            error = msg.error()
            if error is None:
                records.append(msg)
                at_end.discard(msg.partition())
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
            else:
                raise KafkaException(error)
        return records
    finally:
        consumer.close()
