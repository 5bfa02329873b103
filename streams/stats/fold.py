"""Folding Controller results into per-zone rows: pure functions over plain dicts, no I/O.

``fold_result`` folds one ``ControllerResult`` into its session's state and says what it adds
(a ``Change``); ``apply_change`` adds a change to an aggregate row (a day row, the all-time
row); ``expired`` says which rows and sessions retention lets go. How the rows are keyed,
windowed and counted once is in the package docstring (``streams.stats``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

# Permit endpoint -> action; other results (vehicles, profiles) have no zone and are skipped.
ACTIONS = {"permits/push": "CREATE", "permits/update": "UPDATE", "permits/delete": "DELETE"}
COUNTS = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted"}
# A command's duplicate result follows it closely (the key's one in-flight command).
SEEN_PER_SESSION = 16
DAY_RETENTION_DAYS = 400
# Session state (zone, amount, times of a permit) is kept this long after its last change
# or its end, whichever is later: an update or delete after that counts under no zone.
SESSION_RETENTION = timedelta(days=35)

ROW_PREFIX = "zone:"
SESSION_PREFIX = "session:"
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S"


def day_of(at: datetime) -> str:
    """The UTC day (``YYYY-MM-DD``) an instant falls in."""
    return at.astimezone(UTC).date().isoformat()


def instant(at: datetime) -> str:
    """An instant as sortable UTC text (whole seconds)."""
    return at.astimezone(UTC).strftime(INSTANT_FORMAT)


def row_key(partition: int, zone: str, vendor: str, day: str | None) -> str:
    """The table key of one aggregate row; ``day`` ``None`` is the all-time row."""
    return ROW_PREFIX + json.dumps([partition, zone, vendor, day], separators=(",", ":"))


def session_key(session_id: str) -> str:
    return SESSION_PREFIX + session_id


@dataclass(frozen=True)
class Change:
    """What one counted result adds to its zone's rows (the day row and the all-time row)."""

    zone: str
    vendor: str
    day: str
    count: str | None = None  # "created" | "updated" | "deleted"
    rejected: str | None = None  # the ErrorCode as text ("" when the result has none)
    revenue: Mapping[str, Decimal] = field(default_factory=dict)  # currency -> signed delta
    live: int = 0
    timeline: Mapping[str, int] = field(default_factory=dict)  # instant -> active delta


@dataclass(frozen=True)
class Fold:
    """The outcome of folding one result: the change to count (if any) and the new session."""

    change: Change | None
    session: dict[str, Any] | None
    duplicate: bool = False


def _new_session(partition: int, zone: str, vendor: str) -> dict[str, Any]:
    return {
        "partition": partition,
        "zone": zone,
        "vendor": vendor,
        "live": False,
        "amount": None,
        "currency": "",
        "start": None,
        "end": None,
        "at": None,
        "seen": {},
        "through": -1,
    }


def _counts_again(prior: list[Any], outcome: str, code: str) -> bool:
    """May a result of an already counted command count again? (``prior``: outcome, code)."""
    if prior[0] == "APPLIED":
        return False
    if outcome == "APPLIED":
        return True  # a dead letter replayed after a fix
    return bool(code != prior[1])


def _remember(state: dict[str, Any], command_id: str, outcome: str, code: str, offset: int) -> None:
    seen = state["seen"]
    seen.pop(command_id, None)
    seen[command_id] = [outcome, code, offset]
    while len(seen) > SEEN_PER_SESSION:
        del seen[next(iter(seen))]


def _timeline(start: str | None, end: str | None, sign: int) -> dict[str, int]:
    """Active-count deltas of a permit: +1 at its start, -1 at its end (``sign`` -1 undoes)."""
    deltas: dict[str, int] = {}
    if start is not None and end is not None:
        deltas[start] = deltas.get(start, 0) + sign
        deltas[end] = deltas.get(end, 0) - sign
    return {t: d for t, d in deltas.items() if d}


def fold_result(
    result: Mapping[str, Any], partition: int, offset: int, session: Mapping[str, Any] | None
) -> Fold | None:
    """Fold one ``ControllerResult`` read at ``partition``/``offset`` into its session's state.

    Returns ``None`` for a result that is not about a permit. ``Fold.change`` is ``None``
    when nothing is to be counted: a duplicate of a counted command, or a redelivery of a
    result this session already holds (``through``). ``Fold.session`` is the state to
    store, or ``None`` when it is unchanged.
    """
    action = ACTIONS.get(result["endpoint"])
    session_id = result.get("session_id")
    if action is None or not session_id:
        return None
    if session is not None and session["through"] >= offset:
        return Fold(None, None)
    command_id, outcome = result["command_id"], result["outcome"]
    code = "" if result.get("error_code") is None else str(result["error_code"])
    prior = session["seen"].get(command_id) if session is not None else None
    if prior is not None and not _counts_again(prior, outcome, code):
        return Fold(None, None, duplicate=True)

    if session is None:
        state = _new_session(partition, result.get("zone") or "", result["vendor"])
    else:
        state = copy.deepcopy(dict(session))
    if action == "CREATE":
        state["zone"], state["vendor"] = result.get("zone") or "", result["vendor"]
    completed = result["completed_at"]
    day = day_of(completed)
    zone, vendor = state["zone"], state["vendor"]

    if outcome != "APPLIED":
        change = Change(zone, vendor, day, rejected=code)
    elif action == "CREATE":
        change = _created(state, result, zone, vendor, day)
    elif action == "UPDATE":
        change = _updated(state, result, zone, vendor, day)
    else:
        change = _deleted(state, zone, vendor, day)
    _remember(state, command_id, outcome, code, offset)
    state["through"] = offset
    state["at"] = instant(completed)
    return Fold(change, state)


def _created(
    state: dict[str, Any], result: Mapping[str, Any], zone: str, vendor: str, day: str
) -> Change:
    amount, currency = result.get("amount"), result.get("currency") or ""
    start = instant(result["start_time"]) if result.get("start_time") else None
    end = instant(result["end_time"]) if result.get("end_time") else None
    state.update(
        live=True,
        amount=None if amount is None else str(amount),
        currency=currency,
        start=start,
        end=end,
    )
    return Change(
        zone,
        vendor,
        day,
        count="created",
        revenue={} if amount is None else {currency: Decimal(amount)},
        live=1,
        timeline=_timeline(start, end, +1),
    )


def _updated(
    state: dict[str, Any], result: Mapping[str, Any], zone: str, vendor: str, day: str
) -> Change:
    if not state["live"]:
        # No push seen for it (or pruned): its amount and times are unknown here.
        return Change(zone, vendor, day, count="updated")
    revenue: dict[str, Decimal] = {}
    timeline: dict[str, int] = {}
    amount = result.get("amount")
    if amount is not None:
        # The Controller keeps one amount per permit; an update replaces it.
        old_currency, new_currency = state["currency"], result.get("currency") or state["currency"]
        old = Decimal(state["amount"]) if state["amount"] is not None else Decimal("0.00")
        revenue[old_currency] = revenue.get(old_currency, Decimal("0")) - old
        revenue[new_currency] = revenue.get(new_currency, Decimal("0")) + Decimal(amount)
        revenue = {c: d for c, d in revenue.items() if d}
        state.update(amount=str(amount), currency=new_currency)
    elif result.get("currency"):
        state["currency"] = result["currency"]
    if result.get("end_time") is not None:
        end = instant(result["end_time"])
        if end != state["end"] and state["start"] is not None:
            timeline = {
                t: d
                for t, d in _merge_counts(
                    _timeline(state["start"], state["end"], -1),
                    _timeline(state["start"], end, +1),
                ).items()
                if d
            }
        state["end"] = end
    return Change(zone, vendor, day, count="updated", revenue=revenue, timeline=timeline)


def _deleted(state: dict[str, Any], zone: str, vendor: str, day: str) -> Change:
    if not state["live"]:
        return Change(zone, vendor, day, count="deleted")
    state["live"] = False
    return Change(
        zone,
        vendor,
        day,
        count="deleted",
        live=-1,
        timeline=_timeline(state["start"], state["end"], -1),
    )


def _merge_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = merged.get(key, 0) + value
    return merged


def _new_row(partition: int, zone: str, vendor: str, day: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "partition": partition,
        "zone": zone,
        "vendor": vendor,
        "day": day,
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "revenue": {},
        "rejected": {},
        "through": -1,
    }
    if day is None:
        row.update(live=0, active_base=0, timeline={})
    return row


def apply_change(
    row: Mapping[str, Any] | None,
    change: Change,
    partition: int,
    offset: int,
    day: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """The new value of the row (``day`` ``None``: all-time) after ``change``, read at
    ``offset``; ``None`` when the row already holds that offset."""
    if row is not None and row["through"] >= offset:
        return None
    new = (
        _new_row(partition, change.zone, change.vendor, day)
        if row is None
        else copy.deepcopy(dict(row))
    )
    if change.count is not None:
        new[change.count] += 1
    if change.rejected is not None:
        new["rejected"][change.rejected] = new["rejected"].get(change.rejected, 0) + 1
    for currency, delta in change.revenue.items():
        new["revenue"][currency] = str(Decimal(new["revenue"].get(currency, "0.00")) + delta)
    if day is None:
        new["live"] += change.live
        timeline = _merge_counts(new["timeline"], change.timeline)
        new["active_base"], new["timeline"] = _compact(new["active_base"], timeline, now)
    new["through"] = offset
    return new


def _compact(base: int, timeline: Mapping[str, int], now: datetime) -> tuple[int, dict[str, int]]:
    """Fold the past part of a timeline into its base: only future instants stay listed."""
    cut = instant(now)
    future = {}
    for at, delta in sorted(timeline.items()):
        if at <= cut:
            base += delta
        elif delta:
            future[at] = delta
    return base, future


def active_at(row: Mapping[str, Any], now: datetime) -> int:
    """Permits of an all-time row active at ``now`` (started, not ended, not deleted)."""
    base, _ = _compact(row["active_base"], row["timeline"], now)
    return base


def expired(key: str, value: Mapping[str, Any], now: datetime) -> bool:
    """True for a day row past ``DAY_RETENTION_DAYS`` or a session past ``SESSION_RETENTION``."""
    if key.startswith(ROW_PREFIX):
        day = value.get("day")
        oldest = (now.astimezone(UTC).date() - timedelta(days=DAY_RETENTION_DAYS)).isoformat()
        return day is not None and day < oldest
    if key.startswith(SESSION_PREFIX):
        last = max(filter(None, (value.get("at"), value.get("end"))), default=None)
        return last is not None and last < instant(now - SESSION_RETENTION)
    return False
