from datetime import UTC, datetime, timedelta
from decimal import Decimal

from streams.dedupe import check, fingerprint

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def event(**overrides):
    base = {
        "event_id": "e-1",
        "session_id": "s-1",
        "action": "UPDATE",
        "vendor": "hotspot",
        "received_at": NOW,
        "plate": "PL8RDR",
        "amount": Decimal("14.50"),
        "start_time": datetime(2018, 7, 2, 13, 0, tzinfo=UTC),
        "idempotency_key": None,
    }
    return {**base, **overrides}


def run(events, at=NOW):
    state, verdicts = None, []
    for offset, e in events:
        duplicate, state = check(state, e, at + offset, WINDOW)
        verdicts.append(duplicate)
    return verdicts


def test_a_retry_with_a_new_event_id_and_arrival_time_has_the_same_fingerprint():
    assert fingerprint(event()) == fingerprint(
        event(event_id="e-2", received_at=NOW + timedelta(seconds=3), idempotency_key="k")
    )


def test_different_content_vendor_session_or_action_differ():
    base = fingerprint(event())
    for change in (
        {"amount": Decimal("14.51")},
        {"vendor": "banner"},
        {"session_id": "s-2"},
        {"action": "DELETE"},
    ):
        assert fingerprint(event(**change)) != base


def test_a_repeat_within_the_window_is_a_duplicate_and_after_it_is_not():
    zero, later = timedelta(0), timedelta(minutes=11)
    assert run([(zero, event()), (timedelta(seconds=5), event(event_id="e-2"))]) == [False, True]
    assert run([(zero, event()), (later, event(event_id="e-2"))]) == [False, False]


def test_an_update_back_to_an_earlier_value_is_applied():
    a, b = event(amount=Decimal("1.00")), event(amount=Decimal("2.00"))
    steps = [(timedelta(seconds=s), e) for s, e in ((0, a), (1, b), (2, a))]
    assert run(steps) == [False, False, False]


def test_a_second_create_of_a_session_is_a_duplicate_even_late_or_respelled():
    create = event(action="CREATE")
    steps = [
        (timedelta(0), create),
        (timedelta(seconds=1), event(action="UPDATE", amount=Decimal("3.00"))),
        (timedelta(hours=2), event(action="CREATE", plate="PL8RDS", event_id="e-9")),
    ]
    assert run(steps) == [False, False, True]


def test_every_avro_value_type_can_be_fingerprinted():
    from datetime import date

    profile = {"unique_id": "u1", "date_of_birth": date(1901, 1, 31), "year": 2021, "vip": None}
    assert fingerprint(profile) == fingerprint(dict(profile))
    assert fingerprint(profile) != fingerprint({**profile, "date_of_birth": date(1901, 2, 1)})
