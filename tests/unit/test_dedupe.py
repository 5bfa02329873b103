from datetime import UTC, datetime, timedelta
from decimal import Decimal

from streams.dedupe import fingerprint, remember, seen_within

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def event(**overrides):
    base = {
        "event_id": "e-1",
        "session_id": "s-1",
        "action": "CREATE",
        "vendor": "hotspot",
        "received_at": NOW,
        "plate": "PL8RDR",
        "amount": Decimal("14.50"),
        "start_time": datetime(2018, 7, 2, 13, 0, tzinfo=UTC),
        "idempotency_key": None,
    }
    return {**base, **overrides}


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
        {"action": "UPDATE"},
    ):
        assert fingerprint(event(**change)) != base


def test_a_fingerprint_counts_as_seen_only_within_the_window():
    seen = remember({}, "fp", NOW, WINDOW)
    assert seen_within(seen, "fp", NOW + timedelta(minutes=9), WINDOW)
    assert not seen_within(seen, "fp", NOW + timedelta(minutes=10), WINDOW)
    assert not seen_within(seen, "other", NOW, WINDOW)


def test_remember_forgets_entries_older_than_the_window():
    seen = remember({}, "old", NOW, WINDOW)
    seen = remember(seen, "new", NOW + timedelta(minutes=11), WINDOW)
    assert set(seen) == {"new"}
