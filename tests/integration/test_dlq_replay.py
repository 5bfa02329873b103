"""Dead letters against a real broker: a replay is sent at most once whatever its age (issue 11,
item 9), a push in doubt is never replayed, and resolving one replays only what it held
(item 11)."""

from datetime import UTC, datetime

from confluent_kafka import Producer

from consumers.deadletters import read_dead_letters, replay, resolve, settled
from foundation.kafka import PARTITIONER, read_topic
from schemas.avro import codec


def command(endpoint: str, event: str = "ev-1") -> dict:
    body = {"referenceID": "ps-1", "endTime": "2026-12-01T12:00:00"}
    if endpoint == "permits/push":
        body = {"LicencePlate": "PL8RDR", "zone": "Lot 4", "endTime": "2026-12-01T12:00:00"}
    return {
        "command_id": f"{event}:{endpoint}",
        "event_id": event,
        "session_id": "ps-1",
        "endpoint": endpoint,
        "body": body,
        "vendor": "hotspot",
        "zone": None,
        "amount": None,
        "currency": None,
        "created_at": datetime.now(UTC),
    }


def dead_letter(settings, cmd: dict, reason: str, offset: int) -> None:
    letter = {
        "original_value": codec().encode("ControllerCommand", cmd),
        "original_key": b"ps-1",
        "topic": settings.topic("commands"),
        "partition": 0,
        "offset": offset,
        "reason": reason,
        "error_code": 9009 if reason == "controller_rejected" else None,
        "error_message": "push in doubt: plate=PL8RDR zone=Lot 4" if reason == "in_doubt" else "",
        "command_id": cmd["command_id"],
        "failed_at": datetime.now(UTC),
    }
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "partitioner": PARTITIONER}
    )
    producer.produce(settings.topic("dlq"), key=b"ps-1", value=codec().encode("DeadLetter", letter))
    producer.flush(10)


def commands_sent(settings) -> list[dict]:
    records = read_topic(settings.kafka_bootstrap_servers, settings.topic("commands"))
    return [codec().decode(r.value(), "ControllerCommand")[1] for r in records]


def test_a_dead_letter_replayed_twice_is_sent_back_once(stack_settings):
    settings = stack_settings
    dead_letter(settings, command("permits/update"), "controller_rejected", 5)
    first = replay(settings, read_dead_letters(settings))
    again = replay(settings, read_dead_letters(settings))
    assert (len(first.sent), len(again.sent), len(again.already)) == (1, 0, 1)
    [sent] = commands_sent(settings)
    assert sent["command_id"].startswith("ev-1:permits/update~replay-")
    assert len(settled(read_dead_letters(settings))) == 1  # the marker that remembers it


def test_a_push_in_doubt_is_never_replayed_and_resolving_it_replays_only_what_it_held(
    stack_settings,
):
    settings = stack_settings
    dead_letter(settings, command("permits/push"), "in_doubt", 1)
    dead_letter(settings, command("permits/update", "ev-2"), "in_doubt", 2)
    blanket = replay(settings, read_dead_letters(settings))
    assert [e.endpoint for e in blanket.in_doubt] == ["permits/push"]
    assert [e.endpoint for e in blanket.sent] == ["permits/update"]

    assert resolve(settings, "ps-1", "controller-ref-7") == 0  # the update was replayed already
    endpoints = [c["endpoint"] for c in commands_sent(settings)]
    assert endpoints == ["permits/update", "parkstream/resolve"]  # never the push again
    reasons = {m.record["reason"] for m in settled(read_dead_letters(settings)).values()}
    assert reasons == {"replayed", "resolved"}


def test_a_push_in_doubt_the_controller_lacks_is_pushed_once_then_what_it_held(stack_settings):
    settings = stack_settings
    dead_letter(settings, command("permits/push"), "in_doubt", 1)
    dead_letter(settings, command("permits/update", "ev-2"), "in_doubt", 2)
    assert resolve(settings, "ps-1", None) == 1
    assert resolve(settings, "ps-1", None) == 0  # a second resolve sends nothing again
    sent = commands_sent(settings)
    assert [c["endpoint"] for c in sent] == ["permits/push", "permits/update"]
    assert all("~replay-" in c["command_id"] for c in sent)
