"""Kafka plumbing shared by every process: topic creation and an asyncio-friendly producer.

Thin wrappers around ``confluent_kafka`` (quix-streams style): librdkafka
configuration stays one dict with the library's own key names.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client import Gauge

from foundation.settings import PREFIX, TOPICS, Settings, SettingsError

log = logging.getLogger(__name__)

# Same partitioner as the Java client and aiokafka (Faust), so a key lands on the
# same partition number whichever of our processes produced it.
PARTITIONER = "murmur2_random"


# librdkafka's linger for every producer of ours: a record waits at most this long for
# others to share its produce request (the library's own default since 1.9).
LINGER_MS = 5


def producer_config(
    bootstrap_servers: str, *, batch_messages: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The one librdkafka producer configuration of every parkstream process.

    acks=all and idempotence, so an acknowledged record is in the topic exactly once;
    the partitioner of the Java client and Faust; never auto-creating a topic (it would
    get the broker's partition count, not ours). ``batch_messages`` is
    ``PARKSTREAM_PRODUCER_BATCH_MESSAGES`` (1 on the local broker, docs/local-broker.md).
    ``extra`` adds or overrides keys, with librdkafka's own names.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": PARTITIONER,
        "linger.ms": LINGER_MS,
        "allow.auto.create.topics": False,
    }
    if batch_messages is not None:
        config["batch.num.messages"] = batch_messages
    return {**config, **extra}


class BrokerUnavailable(RuntimeError):
    """The broker did not take a record (down, timed out, or refused it)."""


TOPICS_UNDER_REPLICATED = Gauge(
    "parkstream_topic_replicas_missing",
    "Replicas a parkstream topic has fewer than PARKSTREAM_TOPIC_REPLICATION_FACTOR (checked at "
    "start; 0 when it has enough).",
    ["topic"],
)


def replication_problems(
    settings: Settings, brokers: int, replicas: Mapping[str, int]
) -> tuple[str | None, dict[str, int]]:
    """``(error, missing)`` for a cluster of ``brokers`` whose topics have ``replicas``
    (topic -> fewest replicas of any of its partitions).

    ``error`` is the one line that stops the start when the configured factor cannot be
    met; ``missing`` names each existing topic with fewer replicas than configured.
    """
    wanted = settings.topic_replication_factor
    if wanted > brokers:
        return (
            f"{PREFIX}TOPIC_REPLICATION_FACTOR={wanted}: the cluster has {brokers} "
            f"broker{'s' if brokers != 1 else ''}; set it to at most {brokers}",
            {},
        )
    return None, {name: wanted - n for name, n in replicas.items() if n < wanted}


def topic_config(settings: Settings) -> dict[str, str]:
    """Config of every topic parkstream creates (and of every Faust changelog)."""
    return {"min.insync.replicas": str(settings.topic_min_insync_replicas)}


def ensure_topics(
    settings: Settings, timeout: float = 15.0, also_check: Iterable[str] = ()
) -> list[str]:
    """Create parkstream's topics that do not exist yet; return the names created.

    Topics get ``PARKSTREAM_TOPIC_PARTITIONS`` partitions, ``PARKSTREAM_TOPIC_REPLICATION_FACTOR``
    replicas and ``min.insync.replicas``. A factor larger than the cluster's broker count
    raises ``SettingsError`` (one line naming the variable). An existing topic (or one of
    ``also_check``, e.g. Faust's changelogs) with fewer replicas is left as it is, with a
    warning line and ``parkstream_topic_replicas_missing``.
    """
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    metadata = admin.list_topics(timeout=timeout)
    wanted = [settings.topic(name) for name in TOPICS]
    replicas = {
        name: min((len(p.replicas) for p in topic.partitions.values()), default=0)
        for name, topic in metadata.topics.items()
        if name in {*wanted, *also_check}
    }
    error, missing = replication_problems(settings, len(metadata.brokers), replicas)
    if error is not None:
        raise SettingsError(error)
    for name in replicas:
        TOPICS_UNDER_REPLICATED.labels(name).set(missing.get(name, 0))
    for name in sorted(missing):
        log.warning(
            'topic has fewer replicas than configured topic="%s" replicas=%d wanted=%d '
            'variable="%sTOPIC_REPLICATION_FACTOR"',
            name,
            replicas[name],
            settings.topic_replication_factor,
            PREFIX,
        )
    missing_topics = [
        NewTopic(
            name,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config=topic_config(settings),
        )
        for name in wanted
        if name not in metadata.topics
    ]
    if not missing_topics:
        return []
    created = []
    for name, future in admin.create_topics(missing_topics, request_timeout=timeout).items():
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

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        delivery_timeout_ms: int = 10_000,
        batch_messages: int | None = None,
        **extra: Any,
    ):
        self.config = producer_config(
            bootstrap_servers,
            batch_messages=batch_messages,
            **{
                "delivery.timeout.ms": delivery_timeout_ms,
                "socket.connection.setup.timeout.ms": min(delivery_timeout_ms, 5_000),
            },
            **extra,
        )
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
        headers: list[tuple[str, str | bytes | None]] | None = None,
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
            error, partition = msg.error(), msg.partition()
            assert partition is not None  # a consumed record has its partition
            if error is None:
                records.append(msg)
                at_end.discard(partition)
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(partition)
            else:
                raise KafkaException(error)
        return records
    finally:
        consumer.close()
