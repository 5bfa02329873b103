from datetime import UTC, datetime
from decimal import Decimal

from streams.plan import command_for_session_event


def event(action="CREATE", **overrides):
    base = {
        "event_id": "e-1",
        "session_id": "ps-ref-1",
        "action": action,
        "vendor": "hotspot",
        "received_at": datetime(2018, 7, 2, 13, 0, tzinfo=UTC),
        "plate": "PL8RDR",
        "amount": Decimal("14.50"),
        "currency": "CAD",
        "start_time": datetime(2018, 7, 2, 9, 0, tzinfo=UTC),
        "end_time": datetime(2018, 7, 2, 9, 30, tzinfo=UTC),
        "permit_no": "L4-1138",
        "zone": "Lot 4",
        "promo_code": None,
        "idempotency_key": None,
    }
    return {**base, **overrides}


def test_a_create_becomes_a_push_with_the_documented_wire_names():
    command = command_for_session_event(event())
    assert command["endpoint"] == "permits/push"
    assert command["body"] == {
        "Amount": "14.50",
        "CurrencyID": "CAD",
        "LicencePlate": "PL8RDR",
        "zone": "Lot 4",
        "permitNo": "L4-1138",
        "startTime": "2018-07-02T09:00:00",
        "endTime": "2018-07-02T09:30:00",
    }


def test_the_same_event_always_plans_the_same_command_id():
    assert (
        command_for_session_event(event())["command_id"]
        == command_for_session_event(event())["command_id"]
    )
    assert (
        command_for_session_event(event())["command_id"]
        != command_for_session_event(event(event_id="e-2"))["command_id"]
    )


def test_an_update_names_the_parkstream_reference_and_never_resends_the_start():
    command = command_for_session_event(event("UPDATE"))
    assert command["endpoint"] == "permits/update"
    assert command["body"]["referenceID"] == "ps-ref-1"
    assert "startTime" not in command["body"]


def test_a_delete_carries_only_the_reference():
    command = command_for_session_event(event("DELETE"))
    assert command["endpoint"] == "permits/delete"
    assert command["body"] == {"referenceID": "ps-ref-1"}
