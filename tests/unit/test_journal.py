from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from consumers.journal import (
    Lookup,
    Step,
    applied_before,
    done_entry,
    expired,
    intent_entry,
    next_step,
    push_lookup,
    push_visible,
    pushed_before,
    resend_step,
)
from schemas.controller import PlatePermit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("endpoint", ["permits/push", "permits/update", "permits/delete"])
def test_a_command_never_journaled_is_called(endpoint):
    assert next_step(None, endpoint) is Step.CALL


@pytest.mark.parametrize("outcome", ["applied", "rejected", "in_doubt"])
def test_a_done_command_is_never_called_again(outcome):
    assert next_step(done_entry(NOW, outcome), "permits/push") is Step.SKIP


def test_an_interrupted_push_is_reconciled_before_any_second_push():
    assert next_step(intent_entry(NOW), "permits/push") is Step.RECONCILE_PUSH


@pytest.mark.parametrize("endpoint", ["permits/update", "permits/delete"])
def test_an_interrupted_update_or_delete_is_reapplied(endpoint):
    assert next_step(intent_entry(NOW), endpoint) is Step.REAPPLY


def test_a_call_whose_answer_was_lost_is_sent_again_like_an_interrupted_one():
    # A timeout or a 5xx may follow an applied call: the retry must not double a push,
    # and a retried delete answered 9009 was applied the first time.
    assert resend_step("permits/push") is Step.RECONCILE_PUSH
    assert applied_before(resend_step("permits/delete"), "permits/delete", 9009)
    assert applied_before(resend_step("vehicles/push"), "vehicles/push", 9012)
    assert resend_step("permits/update") is Step.REAPPLY


def test_a_reapplied_delete_answered_9009_or_vehicle_answered_9012_counts_as_applied():
    assert applied_before(Step.REAPPLY, "vehicles/push", 9012)
    assert applied_before(Step.REAPPLY, "permits/delete", 9009)
    assert not applied_before(Step.CALL, "permits/delete", 9009)
    assert not applied_before(Step.REAPPLY, "permits/update", 9009)
    assert not applied_before(Step.REAPPLY, "permits/delete", 9008)


def test_a_reconciled_push_refused_as_a_duplicate_was_pushed_before():
    assert pushed_before(Step.RECONCILE_PUSH, 9022)
    assert not pushed_before(Step.CALL, 9022)
    assert not pushed_before(Step.RECONCILE_PUSH, 9006)


def permit(expires):
    return PlatePermit(type="standard", short_name="Lot 4", expires=expires)


def test_a_push_is_visible_when_a_permit_ends_at_its_end_time_in_display_time():
    end = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    eastern = timezone(timedelta(hours=-5))
    assert push_visible([permit(datetime(2026, 11, 23, 12, 30))], end, eastern)
    assert push_visible([permit(datetime(2026, 11, 23, 17, 30))], end, UTC)
    assert not push_visible([permit(datetime(2026, 11, 23, 17, 31))], end, UTC)
    assert not push_visible([], end, UTC)


def test_only_settled_entries_of_the_partition_older_than_the_retention_expire():
    retention = timedelta(days=30)
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=29)
    entries = [
        ("old-done", {**done_entry(old, "applied"), "partition": 2}),
        ("old-held", {**done_entry(old, "held", 9009), "partition": 2}),
        ("recent-done", {**done_entry(recent, "applied"), "partition": 2}),
        ("old-intent", {**intent_entry(old), "partition": 2}),  # outcome unknown: kept
        ("other-partition", {**done_entry(old, "applied"), "partition": 1}),
        ("no-partition", done_entry(old, "applied")),  # written before entries named it
        ("deleted", None),
    ]
    assert expired(entries, 2, NOW, retention) == ["old-done", "old-held"]


# --- reconciling an interrupted push: push again only on proof of absence --------------------

TORONTO = ZoneInfo("America/Toronto")


def test_a_permit_shown_in_the_controllers_local_time_is_found():
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    shown = permit(end.astimezone(TORONTO).replace(tzinfo=None))
    assert push_lookup([shown], start, end, NOW, TORONTO) is Lookup.SHOWN
    # Read as UTC it would look absent, and the permit would be pushed twice.
    assert push_lookup([shown], start, end, NOW, UTC) is Lookup.ABSENT


def test_an_active_permit_missing_from_the_answer_is_absent():
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    assert push_lookup([], start, end, NOW, UTC) is Lookup.ABSENT


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOW - timedelta(hours=3), NOW - timedelta(hours=1)),  # already ended
        (NOW + timedelta(hours=1), NOW + timedelta(hours=2)),  # starts later
        (NOW - timedelta(seconds=30), NOW + timedelta(hours=1)),  # just started: clocks differ
        (NOW - timedelta(hours=1), NOW + timedelta(seconds=30)),  # about to end
        (None, NOW + timedelta(hours=1)),  # start unknown
    ],
)
def test_a_permit_validate_plate_cannot_show_now_is_unknown_never_absent(start, end):
    assert push_lookup([], start, end, NOW, UTC) is Lookup.UNKNOWN


def test_no_readable_answer_is_unknown():
    start, end = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    assert push_lookup(None, start, end, NOW, UTC) is Lookup.UNKNOWN
