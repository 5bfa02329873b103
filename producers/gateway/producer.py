"""The Kafka producer the gateway sends with: an accepted event encoded, sent and
acknowledged; after a failed delivery a dead producer replaced, and missing topics
re-created before the next send (a broker that came back empty)."""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka import KafkaException

from foundation.kafka import AsyncProducer, BrokerUnavailable, ensure_topics
from foundation.settings import Settings
from producers.events import Accepted
from schemas.avro import AvroCodec, codec

log = logging.getLogger(__package__)

TOPIC_CHECK_TIMEOUT_SECONDS = 5.0
DELIVERY_TIMEOUT_MS = 10_000  # a vendor waits at most this long for the broker, then gets 503


class GatewayProducer(AsyncProducer):
    """The gateway's producer: never auto-creates topics, and outlives its own death.

    After a broker restart the idempotent producer's id is unknown to the new broker,
    a *fatal* librdkafka error: the client is unusable from then on. Its delivery
    thread keeps serving reports (so no send waits forever) and records the error in
    ``fatal``; the gateway then replaces the producer.
    """

    def __init__(
        self, bootstrap_servers: str, *, delivery_timeout_ms: int, batch_messages: int = 10_000
    ) -> None:
        super().__init__(
            bootstrap_servers,
            delivery_timeout_ms=delivery_timeout_ms,
            batch_messages=batch_messages,
            # Find a returning broker within a second, not librdkafka's default 10 s.
            **{"reconnect.backoff.max.ms": 1000},
        )
        self.fatal: str | None = None

    def _poll(self) -> None:
        while not self._stop.is_set():
            assert self._producer is not None
            try:
                self._producer.poll(0.1)
            except KafkaException as exc:
                if self.fatal is None:
                    self.fatal = str(exc.args[0].str() if exc.args else exc)
                    log.warning('kafka producer failed for good reason="%s"', self.fatal)


class EventPublisher:
    """Publishes the gateway's accepted events: encoded, sent, acknowledged by the broker."""

    def __init__(
        self,
        settings: Settings,
        producer: AsyncProducer | None = None,
        avro: AvroCodec | None = None,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    ) -> None:
        self.settings = settings
        # Without a producer given, the gateway owns one, and replaces it when it dies.
        self.owns_producer = producer is None
        self._delivery_timeout_ms = delivery_timeout_ms
        self.producer = producer if producer is not None else self._new_producer()
        self.codec = avro or codec(settings.schema_registry_url)
        self._topics_stale = False
        self._topics_lock = asyncio.Lock()
        self._failed_producer: AsyncProducer | None = None

    def _new_producer(self) -> AsyncProducer:
        return GatewayProducer(
            self.settings.kafka_bootstrap_servers,
            delivery_timeout_ms=self._delivery_timeout_ms,
            batch_messages=self.settings.producer_batch_messages,
        ).start()

    async def _live_producer(self) -> AsyncProducer:
        """The producer to send with: a fresh one once the gateway's own one has failed.

        After a failed delivery the old client may be dead (fatal), backing off its
        reconnects, or holding a producer id that a restarted broker no longer knows; a
        new client starts clean. The old one is closed once its last reports are served.
        """
        failed = self.producer
        if self.owns_producer and self._failed_producer is failed:
            self.producer = self._new_producer()
            self._failed_producer = None
            log.warning("kafka producer replaced after a failed delivery")
            grace = self._delivery_timeout_ms / 1000 + 1
            asyncio.get_running_loop().run_in_executor(None, failed.close, grace)
        return self.producer

    async def publish(self, accepted: Accepted) -> None:
        """Send the event and wait for the broker's acknowledgement; ``BrokerUnavailable``.

        A send that failed because the producer died (a broker that restarted) is tried
        once more with a new producer: the event was not written, and if it had been,
        its stable event id lets the worker drop the copy.
        """
        value = self.codec.encode(accepted.record_name, accepted.record)
        topic, key = self.settings.topic(accepted.topic), accepted.key.encode()
        for attempt in (1, 2):
            if self._topics_stale:
                await self._recreate_topics()
            producer = await self._live_producer()
            try:
                await producer.send(topic, value, key=key)
                return
            except BrokerUnavailable:
                # A broker that comes back may have lost its topics (Tansu keeps them in memory).
                self._topics_stale = True
                if producer is self.producer:
                    self._failed_producer = producer
                if attempt == 1 and self.owns_producer and getattr(producer, "fatal", None):
                    continue
                raise

    async def close(self) -> None:
        """Stop the gateway's own producer (after its outstanding deliveries)."""
        if self.owns_producer:
            await asyncio.to_thread(self.producer.close)

    async def _recreate_topics(self) -> None:
        async with self._topics_lock:
            if not self._topics_stale:
                return
            try:
                created = await asyncio.to_thread(
                    ensure_topics, self.settings, TOPIC_CHECK_TIMEOUT_SECONDS
                )
            except Exception as exc:  # KafkaException and friends: the broker is not back
                raise BrokerUnavailable(f"topics cannot be checked: {exc}") from exc
            self._topics_stale = False
            if created:
                log.warning('missing topics re-created names="%s"', ",".join(created))
