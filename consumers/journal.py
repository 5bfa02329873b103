"""The command journal: what happened to each command, so none is applied twice.

Before its Controller call, a command's entry is written as ``intent`` and
flushed to the table's changelog; after the answer it becomes ``done``. When a
command is delivered again (a crash, a rebalance), its entry decides:

    no entry  -> the call was never made: call
    done      -> already applied or rejected: skip (its result is already recorded)
    intent    -> interrupted mid-call: the Controller may or may not have applied it
                   permits/push   -> reconcile: look for the permit before pushing again
                                     (validate/plate, ``push_lookup``):
                                       shown   -> "in doubt": applied, reference unknown
                                       absent  -> push again (refused as a duplicate,
                                                  9022: in doubt)
                                       unknown -> in doubt (the lookup failed, or the
                                                  permit is not active now, so the
                                                  Controller cannot show it)
                   anything else  -> apply again: updates, deletes and profile pushes are
                                     idempotent; a delete answered 9009 or a vehicle push
                                     answered 9012 after an interruption was applied the
                                     first time

A lost answer is an interruption too: a call that timed out, was cut off or got a 5xx
may have been applied before the answer was lost (the Controller commits, then fails).
The attempt after it is a re-send with the same rules (``resend_step``), so a live
retry can no more double a push than a crash can.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from schemas.controller import PlatePermit

INTENT = "intent"
DONE = "done"
# Answers that, to a call re-sent after an interruption, mean "your first call worked".
APPLIED_BEFORE = {"permits/delete": 9009, "vehicles/push": 9012}
# A re-sent push refused for its ticket number: the interrupted push was applied.
DUPLICATE_RECORD = 9022


# validate/plate lists a permit only while it is active; so near its start or end the
# Controller's clock decides, and ours may differ from it by this much.
CLOCK_MARGIN = timedelta(seconds=60)


class Lookup(enum.Enum):
    """What validate/plate says of an interrupted push."""

    SHOWN = "shown"  # a permit of the plate ends at the push's end time
    ABSENT = "absent"  # it could have been listed (active now) and is not
    UNKNOWN = "unknown"  # no answer to trust, or the permit cannot be listed now


class Step(enum.Enum):
    CALL = "call"
    SKIP = "skip"
    RECONCILE_PUSH = "reconcile_push"
    REAPPLY = "reapply"


def next_step(entry: dict[str, Any] | None, endpoint: str) -> Step:
    """What to do with a command whose journal entry is ``entry``."""
    if entry is None:
        return Step.CALL
    if entry.get("state") == DONE:
        return Step.SKIP
    return Step.RECONCILE_PUSH if endpoint == "permits/push" else Step.REAPPLY


def resend_step(endpoint: str) -> Step:
    """The step of the next attempt after a call whose answer was lost."""
    return Step.RECONCILE_PUSH if endpoint == "permits/push" else Step.REAPPLY


def intent_entry(at: datetime) -> dict[str, Any]:
    return {"state": INTENT, "at": at.isoformat()}


def done_entry(at: datetime, outcome: str, error_code: int | None = None) -> dict[str, Any]:
    return {"state": DONE, "at": at.isoformat(), "outcome": outcome, "error_code": error_code}


def expired(
    entries: Iterable[tuple[str, dict[str, Any] | None]],
    partition: int,
    now: datetime,
    retention: timedelta,
) -> list[str]:
    """Command ids of ``partition``'s ``done`` entries older than ``retention``.

    Only ``done`` entries go: an ``intent`` is a call whose outcome is unknown, kept
    until its command is settled. Entries of other partitions, or written before
    entries named their partition, are left alone: a deletion is written to the
    partition of the event being processed, which must be the entry's own.
    """
    cutoff = now - retention
    return [
        command_id
        for command_id, entry in entries
        if entry is not None
        and entry.get("state") == DONE
        and entry.get("partition") == partition
        and datetime.fromisoformat(entry["at"]) < cutoff
    ]


def applied_before(step: Step, endpoint: str, error_code: int | None) -> bool:
    """A re-sent call refused because the interrupted first call was applied."""
    return (
        step is Step.REAPPLY
        and error_code is not None
        and APPLIED_BEFORE.get(endpoint) == error_code
    )


def pushed_before(step: Step, error_code: int | None) -> bool:
    """A push re-sent after reconciling, refused as a duplicate (9022): the first one landed."""
    return step is Step.RECONCILE_PUSH and error_code == DUPLICATE_RECORD


def push_visible(permits: Iterable[PlatePermit], end_time: datetime, display_tz: tzinfo) -> bool:
    """True when validate/plate lists a permit ending at ``end_time`` (UTC) for the plate.

    The Controller shows ``expires`` as naive local time in ``display_tz``, to the second.
    """
    expected = end_time.astimezone(display_tz).replace(tzinfo=None, microsecond=0)
    return any(p.expires == expected for p in permits)


def push_lookup(
    permits: Iterable[PlatePermit] | None,
    start_time: datetime | None,
    end_time: datetime,
    looked_up_at: datetime,
    display_tz: tzinfo,
) -> Lookup:
    """The verdict on an interrupted push from a validate/plate answer's ``permits``
    (``None``: no readable answer), looked up at ``looked_up_at``.

    A permit missing from the answer proves nothing unless the answer could have listed
    it: validate/plate lists only permits active at the time of the lookup (started, not
    ended), and the clocks may differ by ``CLOCK_MARGIN``.
    """
    if permits is None:
        return Lookup.UNKNOWN
    if push_visible(permits, end_time, display_tz):
        return Lookup.SHOWN
    if start_time is None:
        return Lookup.UNKNOWN
    active = start_time + CLOCK_MARGIN <= looked_up_at <= end_time - CLOCK_MARGIN
    return Lookup.ABSENT if active else Lookup.UNKNOWN
