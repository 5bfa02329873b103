"""Dead letters: read them, replay them after a fix, resolve sessions in doubt.

Replaying never applies a command twice, whatever the dead letter's age:

* each replay is remembered in the dead-letter topic itself: a *marker* record (reason
  ``replayed``, naming the dead letter's partition and offset) is written once the replay
  is sent, and a dead letter with a marker is never sent again (``dlq replay`` says so);
* the replayed command gets the id ``<original id>~replay-<dlq partition>-<dlq offset>``,
  the same each time, so should two replays race, the journal lets it through once.

A session in doubt (its push's answer was lost, and the Controller could not confirm
whether it stored it) has a dead letter of its own (reason ``in_doubt``, the push
itself: plate, zone, times to look for) and holds its later updates and deletes in the
dead-letter topic with reason ``in_doubt``. A push in doubt is never replayed: the
Controller may have it. ``resolve`` tells the worker the Controller's reference id
(found by an operator in the Controller), replays the held commands, in order, behind
it, and marks the push's dead letter ``resolved``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from foundation.kafka import producer_config, read_topic
from foundation.settings import Settings
from schemas.avro import DecodeError, codec

RESOLVE_ENDPOINT = "parkstream/resolve"
# Reasons of the marker records the CLI writes (not dead letters: what became of one).
REPLAYED = "replayed"
RESOLVED = "resolved"
MARKERS = frozenset({REPLAYED, RESOLVED})


@dataclass(frozen=True)
class DeadLetterEntry:
    """One record of the dead-letter topic, decoded."""

    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any]

    @property
    def is_marker(self) -> bool:
        return self.record["reason"] in MARKERS

    @property
    def endpoint(self) -> str | None:
        """The Controller endpoint of a dead-lettered command (``None``: not a command)."""
        try:
            _, command = codec().decode(self.record["original_value"] or b"", "ControllerCommand")
        except DecodeError:
            return None
        return command.get("endpoint")

    @property
    def is_push_in_doubt(self) -> bool:
        return self.record["reason"] == "in_doubt" and self.endpoint == "permits/push"


def read_dead_letters(settings: Settings, timeout: float = 10.0) -> list[DeadLetterEntry]:
    """Every record now in the dead-letter topic, markers included, oldest first per
    partition (no consumer group)."""
    entries = []
    for msg in read_topic(settings.kafka_bootstrap_servers, settings.topic("dlq"), timeout):
        try:
            _, record = codec().decode(msg.value(), expected="DeadLetter")
        except DecodeError:
            continue  # not ours; nothing to replay
        partition, offset = msg.partition(), msg.offset()
        assert partition is not None and offset is not None  # a consumed record has both
        entries.append(DeadLetterEntry(partition, offset, msg.key(), record))
    return sorted(entries, key=lambda e: (e.partition, e.offset))


def settled(entries: list[DeadLetterEntry]) -> dict[tuple[int, int], DeadLetterEntry]:
    """``(partition, offset)`` of each dead letter already replayed or resolved -> its marker."""
    return {(m.record["partition"], m.record["offset"]): m for m in entries if m.is_marker}


def dead_letters(entries: list[DeadLetterEntry]) -> list[DeadLetterEntry]:
    """The dead letters among ``entries`` (markers left out)."""
    return [e for e in entries if not e.is_marker]


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
        producer_config(
            settings.kafka_bootstrap_servers, batch_messages=settings.producer_batch_messages
        )
    )


def _send_all(producer: Producer, records: Sequence[tuple[str, bytes | None, bytes]]) -> None:
    errors: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err.str())

    for topic, key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=report)
    if producer.flush(30) or errors:
        raise RuntimeError(f"the broker did not take every record: {errors or 'timeout'}")


def marker(entry: DeadLetterEntry, reason: str, note: str, settings: Settings) -> bytes:
    """The record that says dead letter ``entry`` was replayed or resolved."""
    return codec().encode(
        "DeadLetter",
        {
            "original_value": None,
            "original_key": entry.key,
            "topic": settings.topic("dlq"),
            "partition": entry.partition,
            "offset": entry.offset,
            "reason": reason,
            "error_code": None,
            "error_message": note,
            "command_id": entry.record.get("command_id"),
            "failed_at": datetime.now(UTC),
        },
    )


@dataclass(frozen=True)
class Replayed:
    """What ``replay`` did with the dead letters it was given."""

    sent: list[DeadLetterEntry]
    already: list[DeadLetterEntry]  # replayed or resolved before: never sent twice
    in_doubt: list[DeadLetterEntry]  # pushes in doubt: resolved, never replayed


def replay(
    settings: Settings,
    entries: list[DeadLetterEntry],
    everything: list[DeadLetterEntry] | None = None,
) -> Replayed:
    """Send the chosen dead letters back to their topics, in order, each at most once.

    ``everything`` is the whole topic as read (markers included), to know what was
    replayed before; it is read when not given.
    """
    done = settled(read_dead_letters(settings) if everything is None else everything)
    result = Replayed([], [], [])
    records = []
    for entry in dead_letters(entries):
        if (entry.partition, entry.offset) in done:
            result.already.append(entry)
        elif entry.is_push_in_doubt:
            result.in_doubt.append(entry)
        else:
            topic, value = replay_value(entry, settings)
            records.append((topic, entry.key, value))
            result.sent.append(entry)
    _send_all(_producer(settings), records)
    # Marked once the replays are acknowledged: a crash in between leaves them unmarked,
    # and the journal still recognises a second replay of the same dead letter.
    note = f"replayed by parkstream dlq replay at {datetime.now(UTC).isoformat()}"
    marks = [
        (settings.topic("dlq"), e.key, marker(e, REPLAYED, note, settings)) for e in result.sent
    ]
    _send_all(_producer(settings), marks)
    return result


def resolve(settings: Settings, reference_id: str, controller_ref: str | None) -> int:
    """Settle a session in doubt; return how many held commands were replayed behind it.

    With ``controller_ref`` (the permit found in the Controller), the worker records that
    id; with ``None`` (an operator looked, and the Controller does not have the permit),
    the push itself is replayed, once. The held updates and deletes follow, in order.
    """
    everything = read_dead_letters(settings)
    done = settled(everything)
    mine = [
        e
        for e in select(dead_letters(everything), reason="in_doubt", key=reference_id.encode())
        if (e.partition, e.offset) not in done
    ]
    pushes = [e for e in mine if e.is_push_in_doubt]
    held = [e for e in mine if not e.is_push_in_doubt]
    first: list[tuple[str, bytes | None, bytes]]
    if controller_ref is not None:
        first = [
            (
                settings.topic("commands"),
                reference_id.encode(),
                resolve_command(reference_id, controller_ref),
            )
        ]
        note = f"resolved as Controller reference {controller_ref}"
    else:
        first = []
        for e in pushes[:1]:
            topic, value = replay_value(e, settings)
            first.append((topic, e.key, value))
        note = "resolved as not in the Controller: the push was replayed"
    _send_all(_producer(settings), first)
    note += f" at {datetime.now(UTC).isoformat()}"
    marks = [(settings.topic("dlq"), e.key, marker(e, RESOLVED, note, settings)) for e in pushes]
    _send_all(_producer(settings), marks)
    replay(settings, held, everything)
    return len(held)
