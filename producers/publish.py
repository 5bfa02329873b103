"""The Python publisher: for vendors who integrate in Python instead of over HTTP.

It validates each request with the Controller contract and produces the same Avro
events as the gateway (``producers.events.accept``: same topics, keys, reference ids
and answers), straight to Kafka with acks=all and idempotence::

    with Publisher(settings, vendor="hotspot") as publisher:       # sync, batched
        accepted = publisher.push_permit(body, on_delivery=print)   # returns at once
        accepted.reference_id                                       # name it in updates
    # leaving the block flushes: every delivery report has been called

    async with AsyncPublisher(settings, vendor="hotspot") as publisher:
        report = await publisher.push_permit(body)                  # after the broker's ack
        reports = await publisher.publish_many("permits/push", bodies)

A request the contract refuses raises ``ContractError`` (sync, and the single async
calls) before anything is produced; ``publish_many`` reports it instead. Topics must
exist (``ensure_topics()`` creates missing ones). The vendor's token, if a body
carries one, is ignored and never produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from foundation.kafka import AsyncProducer, BrokerUnavailable, ensure_topics, producer_config
from foundation.settings import Settings
from producers.events import PUSH_ENDPOINTS, SOURCES, Accepted, accept
from producers.references import ReferenceIssuer, check_idempotency_key
from schemas.avro import AvroCodec, RegistryUnavailable, codec
from schemas.controller import ContractError

log = logging.getLogger(__name__)

DEFAULT_DELIVERY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class DeliveryReport:
    """What became of one request.

    ``delivered``: the broker acknowledged the event (``partition``/``offset`` say
    where). Otherwise ``error_code`` is the Controller ErrorCode the contract refused
    it with (nothing produced), or None when the broker did not take it (``error``).
    """

    endpoint: str
    accepted: Accepted | None
    partition: int | None = None
    offset: int | None = None
    error_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.accepted is not None and self.error is None


class _Publishing:
    """What the sync and async publishers share: validation and encoding."""

    def __init__(
        self,
        settings: Settings,
        vendor: str,
        *,
        source: str = "PUBLISHER",
        avro: AvroCodec | None = None,
    ) -> None:
        if not vendor or not vendor.strip():
            raise ValueError("a vendor name is required")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}")
        self.settings = settings
        self.vendor = vendor.strip()
        self.source = source
        self.codec = avro or codec(settings.schema_registry_url)
        self._references = ReferenceIssuer(settings.reference_secret)

    def prepare(
        self, endpoint: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Accepted:
        """Validate ``body`` for ``endpoint``; the event and answer, or ``ContractError``."""
        if endpoint not in PUSH_ENDPOINTS:
            raise ValueError(f"{endpoint!r} is not one of {', '.join(PUSH_ENDPOINTS)}")
        return accept(
            endpoint,
            dict(body),
            self.vendor,
            self._references,
            idempotency_key=check_idempotency_key(idempotency_key),
            source=self.source,
            require_token=False,
        )

    def _encoded(self, accepted: Accepted) -> tuple[str, bytes, bytes]:
        value = self.codec.encode(accepted.record_name, accepted.record)
        return self.settings.topic(accepted.topic), accepted.key.encode(), value

    def ensure_topics(self) -> list[str]:
        """Create parkstream's missing topics; the names created."""
        return ensure_topics(self.settings)


class Publisher(_Publishing):
    """Synchronous, batched publisher (one ``confluent_kafka.Producer``).

    ``publish`` returns as soon as the event is queued; librdkafka batches queued
    events, and each one's ``on_delivery(DeliveryReport)`` runs from ``poll`` or
    ``flush`` in the caller's thread. Use as a context manager: leaving flushes.
    """

    def __init__(
        self,
        settings: Settings,
        vendor: str,
        *,
        source: str = "PUBLISHER",
        avro: AvroCodec | None = None,
        delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
        **extra_config: Any,
    ) -> None:
        super().__init__(settings, vendor, source=source, avro=avro)
        self.config = producer_config(
            settings.kafka_bootstrap_servers,
            batch_messages=settings.producer_batch_messages,
            **{"delivery.timeout.ms": delivery_timeout_ms},
            **extra_config,
        )
        self._producer: Producer | None = None

    def _client(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self.config)
        return self._producer

    def publish(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        on_delivery: Callable[[DeliveryReport], None] | None = None,
    ) -> Accepted:
        """Validate and queue one request; ``ContractError`` when the contract refuses it.

        Raises ``BrokerUnavailable`` when the client cannot queue at all (it is dead).
        """
        accepted = self.prepare(endpoint, body, idempotency_key=idempotency_key)
        try:
            topic, key, value = self._encoded(accepted)
        except RegistryUnavailable as exc:
            raise BrokerUnavailable(str(exc)) from exc

        def report(err: KafkaError | None, msg: Message) -> None:
            if on_delivery is None:
                return
            if err is not None:
                on_delivery(DeliveryReport(endpoint, accepted, error=err.str()))
            else:
                on_delivery(DeliveryReport(endpoint, accepted, msg.partition(), msg.offset()))

        producer = self._client()
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=report)
                break
            except BufferError:
                # Local queue full: serve delivery reports to make room, then retry.
                producer.poll(0.1)
            except KafkaException as exc:
                raise BrokerUnavailable(str(exc)) from exc
        producer.poll(0)
        return accepted

    def push_permit(self, body: Mapping[str, Any], **kw: Any) -> Accepted:
        return self.publish("permits/push", body, **kw)

    def update_permit(self, body: Mapping[str, Any], **kw: Any) -> Accepted:
        return self.publish("permits/update", body, **kw)

    def delete_permit(self, body: Mapping[str, Any], **kw: Any) -> Accepted:
        return self.publish("permits/delete", body, **kw)

    def push_vehicle(self, body: Mapping[str, Any], **kw: Any) -> Accepted:
        return self.publish("vehicles/push", body, **kw)

    def push_profile(self, body: Mapping[str, Any], **kw: Any) -> Accepted:
        return self.publish("profiles/push", body, **kw)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports that are ready; how many were served."""
        return 0 if self._producer is None else self._producer.poll(timeout)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for every queued event's report; how many are still outstanding."""
        return 0 if self._producer is None else self._producer.flush(timeout)

    def close(self, timeout: float = 60.0) -> int:
        """Flush and drop the client; how many events were left undelivered."""
        left = self.flush(timeout)
        self._producer = None
        return left

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        left = self.close()
        if left:
            log.warning("publisher closed with events undelivered count=%d", left)


class AsyncPublisher(_Publishing):
    """Asyncio publisher: each call returns once the broker acknowledged the event."""

    def __init__(
        self,
        settings: Settings,
        vendor: str,
        *,
        source: str = "PUBLISHER",
        avro: AvroCodec | None = None,
        producer: AsyncProducer | None = None,
        delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS,
    ) -> None:
        super().__init__(settings, vendor, source=source, avro=avro)
        self._owns_producer = producer is None
        self.producer = producer or AsyncProducer(
            settings.kafka_bootstrap_servers,
            delivery_timeout_ms=delivery_timeout_ms,
            batch_messages=settings.producer_batch_messages,
        )

    async def publish(
        self, endpoint: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> DeliveryReport:
        """Validate, send, and wait for the acknowledgement.

        Raises ``ContractError`` before sending, ``BrokerUnavailable`` when the broker
        did not take the event.
        """
        accepted = self.prepare(endpoint, body, idempotency_key=idempotency_key)
        try:
            topic, key, value = self._encoded(accepted)
        except RegistryUnavailable as exc:
            raise BrokerUnavailable(str(exc)) from exc
        message = await self.producer.send(topic, value, key=key)
        return DeliveryReport(endpoint, accepted, message.partition(), message.offset())

    async def push_permit(self, body: Mapping[str, Any], **kw: Any) -> DeliveryReport:
        return await self.publish("permits/push", body, **kw)

    async def update_permit(self, body: Mapping[str, Any], **kw: Any) -> DeliveryReport:
        return await self.publish("permits/update", body, **kw)

    async def delete_permit(self, body: Mapping[str, Any], **kw: Any) -> DeliveryReport:
        return await self.publish("permits/delete", body, **kw)

    async def push_vehicle(self, body: Mapping[str, Any], **kw: Any) -> DeliveryReport:
        return await self.publish("vehicles/push", body, **kw)

    async def push_profile(self, body: Mapping[str, Any], **kw: Any) -> DeliveryReport:
        return await self.publish("profiles/push", body, **kw)

    async def publish_many(
        self, endpoint: str, bodies: Iterable[Mapping[str, Any]]
    ) -> list[DeliveryReport]:
        """Send a batch concurrently (librdkafka batches the records); one report each,
        in order. Refused and undelivered requests are reported, not raised."""

        async def one(body: Mapping[str, Any]) -> DeliveryReport:
            try:
                return await self.publish(endpoint, body)
            except ContractError as err:
                return DeliveryReport(endpoint, None, error_code=err.code, error=err.message)
            except BrokerUnavailable as exc:
                accepted = self.prepare(endpoint, body)
                return DeliveryReport(endpoint, accepted, error=str(exc))

        return list(await asyncio.gather(*(one(body) for body in bodies)))

    async def close(self) -> None:
        if self._owns_producer:
            await asyncio.to_thread(self.producer.close)

    async def __aenter__(self) -> AsyncPublisher:
        self.producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
