"""Dead letters: read them, replay them after a fix, resolve sessions in doubt.

Replaying never applies a command twice: a replayed command gets the id
``<original id>~replay-<dlq partition>-<dlq offset>``, the same however often
that dead letter is replayed, so the dispatcher's journal lets it through once.

A session in doubt (its push was interrupted by a crash, and the Controller shows
a permit but cannot say its reference) holds its later updates and deletes in the
dead-letter topic with reason ``in_doubt``. ``resolve`` tells the worker the
Controller's reference id (found by an operator in the Controller), then replays
the held commands, in order, behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from parkstream.kafka import PARTITIONER, read_topic
from parkstream.settings import Settings
from schemas.avro import DecodeError, codec

RESOLVE_ENDPOINT = "parkstream/resolve"


@dataclass(frozen=True)
class DeadLetterEntry:
    """One record of the dead-letter topic, decoded."""

    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any]


def read_dead_letters(settings: Settings, timeout: float = 10.0) -> list[DeadLetterEntry]:
    """Every dead letter now in the topic, oldest first per partition (no consumer group)."""
    entries = []
    for msg in read_topic(settings.kafka_bootstrap_servers, settings.topic("dlq"), timeout):
        try:
            _, record = codec().decode(msg.value(), expected="DeadLetter")
        except DecodeError:
            continue  # not ours; nothing to replay
        entries.append(DeadLetterEntry(msg.partition(), msg.offset(), msg.key(), record))
    return sorted(entries, key=lambda e: (e.partition, e.offset))


def select(
    entries: list[DeadLetterEntry],
    *,
    code: int | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    key: bytes | None = None,
) -> list[DeadLetterEntry]:
    """The entries matching every filter given."""
    return [
        e
        for e in entries
        if (code is None or e.record["error_code"] == code)
        and (reason is None or e.record["reason"] == reason)
        and (since is None or e.record["failed_at"] >= since)
        and (key is None or e.key == key)
    ]


def replay_value(entry: DeadLetterEntry, settings: Settings) -> tuple[str, bytes]:
    """``(topic, value)`` to send back for a dead letter.

    A command gets its replay id (so replaying twice applies once); any other
    record goes back byte for byte (it failed to decode: a fixed worker may read it).
    """
    record = entry.record
    value = record["original_value"] or b""
    if record["topic"] == settings.topic("commands"):
        try:
            _, command = codec().decode(value, expected="ControllerCommand")
        except DecodeError:
            return record["topic"], value
        original = command["command_id"].split("~replay-")[0]
        command["command_id"] = f"{original}~replay-{entry.partition}-{entry.offset}"
        return record["topic"], codec().encode("ControllerCommand", command)
    return record["topic"], value


def resolve_command(reference_id: str, controller_ref: str, vendor: str = "operator") -> bytes:
    """The command that tells the worker a session in doubt has Controller id ``controller_ref``."""
    return codec().encode(
        "ControllerCommand",
        {
            "command_id": f"resolve-{reference_id}-{controller_ref}",
            "event_id": f"resolve-{reference_id}",
            "session_id": reference_id,
            "endpoint": RESOLVE_ENDPOINT,
            "body": {"controller_ref": controller_ref},
            "vendor": vendor,
            "zone": None,
            "amount": None,
            "currency": None,
            "created_at": datetime.now(UTC),
        },
    )


def _producer(settings: Settings) -> Producer:
    return Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
        }
    )


def _send_all(producer: Producer, records: list[tuple[str, bytes | None, bytes]]) -> None:
    errors: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err.str())

    for topic, key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=report)
    if producer.flush(30) or errors:
        raise RuntimeError(f"the broker did not take every record: {errors or 'timeout'}")


def replay(settings: Settings, entries: list[DeadLetterEntry]) -> int:
    """Send the chosen dead letters back to their topics, in order; return how many."""
    producer = _producer(settings)
    records = []
    for entry in entries:
        topic, value = replay_value(entry, settings)
        records.append((topic, entry.key, value))
    _send_all(producer, records)
    return len(records)


def resolve(settings: Settings, reference_id: str, controller_ref: str) -> int:
    """Record a session's Controller id, then replay its held commands; return how many."""
    held = select(read_dead_letters(settings), reason="in_doubt", key=reference_id.encode())
    records = [
        (
            settings.topic("commands"),
            reference_id.encode(),
            resolve_command(reference_id, controller_ref),
        )
    ]
    for entry in held:
        topic, value = replay_value(entry, settings)
        records.append((topic, entry.key, value))
    _send_all(_producer(settings), records)
    return len(held)
