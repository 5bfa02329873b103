r"""The parkstream Faust worker: topics, tables and the planning agents.

    sessions.v1 --.
    vehicles.v1 --+-- decode -> enrich -> dedupe -> plan --> commands.v1 --dispatch--> Controller
    users.v1 -----'                                          (consumers/)  \--> results.v1 / dlq.v1

Topics carry raw bytes and the agents decode them (``schemas.avro``), so an
undecodable record becomes a dead letter instead of crashing an agent. Enrichment
and dedupe are plain functions (``streams/enrich.py``, ``streams/dedupe.py``); the
agents here only do I/O. Settings come from ``PARKSTREAM_*`` variables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from aiohttp import web as aiohttp_web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from parkstream.settings import Settings
from schemas.avro import DecodeError, codec
from schemas.avro import configure as configure_codec
from streams.dedupe import check
from streams.durable import acknowledged
from streams.enrich import (
    Defaults,
    UserTypeDirectory,
    ZoneDirectory,
    enrich_session,
    enrich_user,
    enrich_vehicle,
)
from streams.plan import (
    command_for_session_event,
    command_for_user_event,
    command_for_vehicle_event,
)

log = logging.getLogger(__name__)

settings = Settings.from_env()

app = faust.App(
    settings.app_id,
    broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
    store="memory://",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=1,
    # Faust declares only its internal topics (table changelogs) with topic_partitions,
    # so they match the source topics that parkstream.kafka.ensure_topics created.
    consumer_auto_offset_reset="earliest",
    # No standby replicas: a worker moved from active to standby crashes recovery with an
    # off-by-one ConsistencyError (faust-streaming #158, seen here with two workers), and
    # with the memory store a new owner replays the changelog anyway.
    table_standby_replicas=0,
    # The check compares a RocksDB file's offsets with the topic, to catch a wiped topic.
    # The memory store has no file; what it compared here was Faust's own read position
    # against an end offset one behind it (same bug family), crashing recovery.
    recovery_consistency_check=False,
    producer_acks=-1,
    # A produce request left unanswered is retried after this, instead of stalling its
    # partition (and every write queued behind it) for Faust's default 20 minutes.
    producer_request_timeout=30,
    # PARKSTREAM_PRODUCER_BATCH_MESSAGES=1 (the local Tansu broker): one record per batch,
    # since Tansu answers ListOffsets wrongly for larger batches and Faust's table recovery
    # reads changelogs up to that answer. aiokafka always admits a batch's first record.
    producer_max_batch_size=1 if settings.producer_batch_messages == 1 else 16384,
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
    web_port=settings.worker_web_port,
    web_bind="0.0.0.0",
    # The address other workers use to forward a table-routed request (/sessions/...):
    # loopback on one machine; Kubernetes sets NODE_CANONICAL_URL to the pod's address.
    web_host="127.0.0.1",
    web_in_thread=False,
    datadir=str(settings.data_dir / "worker"),
)


def raw_topic(name: str) -> faust.TopicT:
    """Topic ``name`` (``settings.topic``) carrying raw bytes: the agents decode them."""
    return app.topic(
        settings.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


sessions_topic = raw_topic("sessions")
commands_topic = raw_topic("commands")
results_topic = raw_topic("results")
dlq_topic = raw_topic("dlq")

vehicles_topic = raw_topic("vehicles")
users_topic = raw_topic("users")

EVENTS_CONSUMED = Counter(
    "parkstream_events_consumed_total", "Records read by the worker.", ["topic"]
)
EVENTS_PRODUCED = Counter(
    "parkstream_events_produced_total", "Records written by the worker.", ["topic"]
)
DEDUPE_DROPPED = Counter(
    "parkstream_dedupe_dropped_total",
    "Events dropped as duplicates of one seen within PARKSTREAM_DEDUPE_WINDOW.",
    ["topic"],
)
FLAGGED = Counter(
    "parkstream_events_flagged_total",
    "Events pushed with a warning: unknown_zone (a disconnected record), unknown_user_type.",
    ["topic", "flag"],
)
DEAD_LETTERS = Counter(
    "parkstream_dead_letters_total",
    "Records sent to the dead-letter topic.",
    ["reason", "error_code"],
)


def dead_letter(
    message: Any,
    reason: str,
    error_code: int | None = None,
    error_message: str | None = None,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A ``DeadLetter`` record that keeps the original record byte for byte."""
    return {
        "original_value": message.value,
        "original_key": message.key,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "reason": reason,
        "error_code": error_code,
        "error_message": error_message,
        "command_id": command_id,
        "failed_at": datetime.now(UTC),
    }


async def send_dead_letter(message: Any, record: dict[str, Any]) -> None:
    """Publish a dead letter with Kafka Connect-style ``__dlq.*`` headers beside the fields."""
    headers = {
        "__dlq.reason": record["reason"].encode(),
        "__dlq.topic": record["topic"].encode(),
        "__dlq.partition": str(record["partition"]).encode(),
        "__dlq.offset": str(record["offset"]).encode(),
    }
    if record["error_code"] is not None:
        headers["__dlq.error_code"] = str(record["error_code"]).encode()
    # Acknowledged before the caller records the command as done or acks its offset.
    await acknowledged(
        dlq_topic.send(key=message.key, value=codec().encode("DeadLetter", record), headers=headers)
    )
    DEAD_LETTERS.labels(record["reason"], str(record["error_code"] or "")).inc()
    EVENTS_PRODUCED.labels("dlq").inc()
    log.warning(
        'dead letter reason="%s" error_code="%s" topic="%s" partition=%d offset=%d',
        record["reason"],
        record["error_code"] or "",
        record["topic"],
        record["partition"],
        record["offset"],
    )


for _topic in ("sessions", "vehicles", "users"):
    DEDUPE_DROPPED.labels(_topic)
FLAGGED.labels("sessions", "unknown_zone")
FLAGGED.labels("users", "unknown_user_type")

# Operator data for enrichment, read once at start.
zones = ZoneDirectory.from_file(settings.zone_aliases) if settings.zone_aliases else ZoneDirectory()
defaults = Defaults(
    currency=settings.default_currency,
    province=settings.default_province or None,
    plate_type=settings.default_plate_type or None,
)
# Filled and refreshed from the Controller's profiles/types/list (consumers/user_types.py).
user_types = UserTypeDirectory()
dedupe_window = timedelta(seconds=settings.dedupe_window)

# Topic key -> {"last": fingerprint, "at": ISO time, "created": bool}. Written while
# the event is current, so each entry lands in its event's partition (co-partitioned).
seen = app.Table("dedupe", default=None, partitions=settings.topic_partitions, key_type=str)

Enricher = Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]]
Planner = Callable[[dict[str, Any]], dict[str, Any]]


def is_repeat(topic: str, key: bytes | None, event: dict[str, Any]) -> bool:
    """True when ``event`` is a duplicate (``streams.dedupe``); remembers it otherwise."""
    table_key = f"{topic}|{(key or b'').decode(errors='replace')}"
    duplicate, state = check(seen.get(table_key), event, datetime.now(UTC), dedupe_window)
    if not duplicate:
        seen[table_key] = state
    return duplicate


def plan_one(
    topic: str, key: bytes | None, record: dict[str, Any], enrich: Enricher, planner: Planner
) -> dict[str, Any] | None:
    """Enrich, dedupe and plan one decoded event: its command, or None for a duplicate."""
    enriched, flags = enrich(record)
    for flag in flags:
        FLAGGED.labels(topic, flag).inc()
        log.warning('event flagged flag="%s" topic="%s" vendor="%s"', flag, topic, record["vendor"])
    if is_repeat(topic, key, enriched):
        DEDUPE_DROPPED.labels(topic).inc()
        log.info('duplicate dropped topic="%s" event_id="%s"', topic, record["event_id"])
        return None
    return planner(enriched)


async def plan_events(
    stream: faust.StreamT, topic: str, record_name: str, enrich: Enricher, planner: Planner
) -> None:
    """decode -> enrich -> dedupe -> plan, for every event of ``topic``."""
    async for event in stream.events():
        EVENTS_CONSUMED.labels(topic).inc()
        message = event.message
        try:
            _, record = codec().decode(message.value, expected=record_name)
        except DecodeError as exc:
            await send_dead_letter(
                message, dead_letter(message, "undecodable", error_message=str(exc))
            )
            continue
        try:
            command = plan_one(topic, event.key, record, enrich, planner)
        except Exception as exc:  # a bug here must not lose an accepted event
            log.exception('event could not be planned topic="%s"', topic)
            await send_dead_letter(
                message, dead_letter(message, "planning_failed", error_message=repr(exc)[:500])
            )
            continue
        if command is None:
            continue
        await commands_topic.send(key=event.key, value=codec().encode("ControllerCommand", command))
        EVENTS_PRODUCED.labels("commands").inc()


@app.agent(sessions_topic)
async def plan(stream: faust.StreamT) -> None:
    """Parking-session events -> permits/push, update or delete commands."""
    await plan_events(
        stream,
        "sessions",
        "ParkingSessionEvent",
        lambda event: enrich_session(event, zones, defaults),
        command_for_session_event,
    )


@app.agent(vehicles_topic)
async def plan_vehicles(stream: faust.StreamT) -> None:
    """Vehicle events -> vehicles/push commands."""
    await plan_events(
        stream,
        "vehicles",
        "VehicleEvent",
        lambda event: (enrich_vehicle(event, defaults), []),
        command_for_vehicle_event,
    )


@app.agent(users_topic)
async def plan_users(stream: faust.StreamT) -> None:
    """User events -> profiles/push commands."""
    await plan_events(
        stream,
        "users",
        "UserEvent",
        lambda event: enrich_user(event, user_types),
        command_for_user_event,
    )


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    assigned = len(app.consumer.assignment()) if app.consumer else 0
    return web.json({"status": "ready", "assigned_partitions": assigned})


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    # Faust's web.bytes() splits no charset out of the content type; aiohttp needs the header.
    return aiohttp_web.Response(
        body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


# Records are written (and Confluent-framed ones read) through the configured registry.
configure_codec(settings.schema_registry_url)
