"""Requests -> events -> commands: what every entry point (gateway, publisher, file) publishes."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from producers.events import accept, vehicle_key
from producers.references import ReferenceIssuer
from schemas.avro import AvroCodec
from schemas.controller import ContractError
from streams.plan import command_for_user_event, command_for_vehicle_event
from tests.support.examples import (
    PERMIT_PUSH_EXAMPLE,
    PROFILE_PUSH_EXAMPLE,
    VEHICLE_PUSH_EXAMPLE,
)

issuer = ReferenceIssuer("test-reference-secret-0001")
codec = AvroCodec()
TOKEN = {"apiToken": "vendor-token"}


def test_a_permit_push_becomes_a_create_keyed_by_its_reference_id():
    accepted = accept("permits/push", {**TOKEN, **PERMIT_PUSH_EXAMPLE}, "hotspot", issuer)
    assert accepted.topic == "sessions"
    assert accepted.key == accepted.reference_id == accepted.record["session_id"]
    assert accepted.record["action"] == "CREATE"
    assert accepted.record["amount"] == Decimal("14.50")
    assert accepted.answer == {
        "status": "success",
        "reference_id": accepted.reference_id,
        "InternalReferenceID": accepted.reference_id,
    }
    assert "vendor-token" not in repr(accepted)


def test_a_retried_push_keeps_its_event_id_so_the_worker_journal_sees_a_repeat():
    first = accept("permits/push", {**TOKEN, **PERMIT_PUSH_EXAMPLE}, "hotspot", issuer)
    again = accept("permits/push", {**TOKEN, **PERMIT_PUSH_EXAMPLE}, "hotspot", issuer)
    assert first.record["event_id"] == again.record["event_id"]
    assert first.record["idempotency_key"] == again.record["idempotency_key"]


def test_an_update_without_a_key_gets_a_fresh_event_id_but_the_same_dedupe_key():
    ref = accept("permits/push", {**TOKEN, **PERMIT_PUSH_EXAMPLE}, "hotspot", issuer).reference_id
    body = {**TOKEN, "referenceID": ref, "endTime": "2018-07-02T10:00:00"}
    first = accept("permits/update", body, "hotspot", issuer)
    again = accept("permits/update", body, "hotspot", issuer)
    assert first.record["event_id"] != again.record["event_id"]
    assert first.record["idempotency_key"] == again.record["idempotency_key"]
    assert first.key == ref


def test_an_update_naming_another_vendors_reference_is_refused_with_9009():
    ref = accept("permits/push", {**TOKEN, **PERMIT_PUSH_EXAMPLE}, "hotspot", issuer).reference_id
    with pytest.raises(ContractError) as caught:
        accept("permits/delete", {**TOKEN, "referenceID": ref}, "banner", issuer)
    assert caught.value.code == 9009


def test_a_vehicle_push_is_keyed_by_normalized_plate_and_province():
    body = {**TOKEN, **VEHICLE_PUSH_EXAMPLE, "plate": " pl8-rdr ", "prov": "ma"}
    accepted = accept("vehicles/push", body, "hotspot", issuer)
    assert accepted.topic == "vehicles"
    assert accepted.key == "PL8RDR:MA"
    assert accepted.answer["status"] == "success"
    assert accepted.answer["vehicle_id_id"] == accepted.reference_id
    assert accepted.answer["warnings"] == []
    assert accepted.record["source"] == "GATEWAY"


def test_a_vehicle_known_only_by_province_id_is_keyed_by_that_id():
    assert vehicle_key({"plate": "PL8RDR", "prov_id": "9"}) == "PL8RDR:#9"


def test_a_too_long_vehicle_colour_is_cut_and_the_documented_warning_answered():
    body = {**TOKEN, **VEHICLE_PUSH_EXAMPLE, "colour": "r" * 60}
    accepted = accept("vehicles/push", body, "hotspot", issuer)
    assert accepted.record["colour"] == "r" * 50
    assert accepted.answer["warnings"] == [
        "The vehicle colour name was too long and has been truncated."
    ]


def test_a_profile_push_is_keyed_by_unique_id_and_answered_with_a_number():
    accepted = accept("profiles/push", {**TOKEN, **PROFILE_PUSH_EXAMPLE}, "banner", issuer)
    assert accepted.topic == "users"
    assert accepted.key == "tester23"
    assert isinstance(accepted.answer["reference_id"], int)
    assert accepted.record["date_of_birth"] == date(1901, 1, 31)


@pytest.mark.parametrize(
    ("endpoint", "example", "planner", "topic_name"),
    [
        ("vehicles/push", VEHICLE_PUSH_EXAMPLE, command_for_vehicle_event, "VehicleEvent"),
        ("profiles/push", PROFILE_PUSH_EXAMPLE, command_for_user_event, "UserEvent"),
    ],
)
def test_a_documented_push_reaches_the_controller_as_the_documented_body(
    endpoint, example, planner, topic_name
):
    accepted = accept(endpoint, {**TOKEN, **example}, "hotspot", issuer)
    _, event = codec.decode(codec.encode(accepted.record_name, accepted.record), topic_name)
    command = planner(event, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert command["endpoint"] == endpoint
    assert command["vendor"] == "hotspot"
    assert command["session_id"] is None
    # Every documented attribute arrives under its documented name (first alias wins).
    expected = dict(example)
    for alias in ("state", "zip", "state2", "zip2", "driver_license_num", "driver_license_state"):
        expected.pop(alias, None)
    assert command["body"] == expected
