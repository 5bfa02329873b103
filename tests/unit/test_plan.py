from streams.plan import command_for_session_event
from tests.support.examples import session_event


def event(action="CREATE", **overrides):
    return session_event(action=action, **overrides)


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
