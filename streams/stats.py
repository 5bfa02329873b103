r"""Per-zone statistics, folded from ``parkstream.results.v1``: what the Controller applied.

    results.v1 --fold_results--> zone_stats table (changelogged) --> GET /stats/zones
                                                                 \-> parkstream_zone_* metrics

Counted per zone, per vendor and per UTC day (plus all-time totals): permits created,
updated and deleted, revenue as exact decimals per currency, rejections per Controller
``ErrorCode``; and, as of now, permits live (applied, not deleted: what the Controller's
permits/stats counts) and active (live, started, not ended). docs/stats.md says what
each figure means.

How it is kept (one table, ``zone_stats``; its changelog is what a restarted worker
recovers):

* **Keys are per results partition.** Faust writes a table key to the changelog
  partition of the event being processed, and a worker recovers only the changelog
  partitions of the results partitions it owns. A key per zone would be written from
  every partition, so each worker would hold a different partial value under the same
  key. Every aggregate key therefore starts with the results partition it is folded
  from: ``zone:[partition, zone, vendor, day]`` (day ``null`` for the all-time row), and a
  query sums across partitions. Per-session state is keyed ``session:<session id>``;
  results are keyed by session id, so a session lives in one partition too.
* **Windows** are tumbling UTC days of ``completed_at`` (when the Controller answered),
  kept as the ``day`` part of the key for ``DAY_RETENTION_DAYS``; all-time rows are
  never pruned.
* **Dedupe.** The dispatcher writes results at least once: after a crash the same
  command's result can appear again, at a later offset. Each session keeps the ids of
  its last ``SEEN_PER_SESSION`` commands with the outcome counted; a result of a command
  already counted is not counted again, except an application after a rejection (a
  dead letter replayed after a fix) or a rejection with another code.
* **Redelivery of our own input** (a crash between table writes and the offset commit)
  is made harmless by offsets: every row records ``through``, the last results offset
  folded into it, and a row never takes an offset twice. The session row is written
  last, and one partition's changelog keeps its order, so a session row that has an
  offset proves every aggregate row has it too.
* **Routing.** ``GET /stats/zones`` on any worker asks every worker for the partitions
  it actively owns (``/stats/zones/partial``, from the assignor's table metadata) and sums
  the answers; ``complete`` is false, with the missing partitions, when one did not
  answer (a rebalance, a worker down).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import faust
from prometheus_client import Counter

from foundation.settings import Settings
from foundation.worker.app import EVENTS_CONSUMED, WorkerApp, dead_letter
from foundation.worker.durable import (
    acknowledged_all,
    apply_locally,
    durable_delete,
    send_table_writes,
)
from foundation.worker.ownership import Lease
from foundation.worker.pipeline import Head
from schemas.avro import DecodeError, codec
from schemas.controller import DOCUMENTED_CURRENCIES
from streams.enrich import ZoneDirectory

log = logging.getLogger(__name__)

# Permit endpoint -> action; other results (vehicles, profiles) have no zone and are skipped.
ACTIONS = {"permits/push": "CREATE", "permits/update": "UPDATE", "permits/delete": "DELETE"}
COUNTS = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted"}
# A command's duplicate result follows it closely (the key's one in-flight command).
SEEN_PER_SESSION = 16
DAY_RETENTION_DAYS = 400
# Session state (zone, amount, times of a permit) is kept this long after its last change
# or its end, whichever is later: an update or delete after that counts under no zone.
SESSION_RETENTION = timedelta(days=35)
# Days listed when a query names no period.
DEFAULT_DAYS = 7
# Metric labels (docs/metrics.md): Controller-reported zones with a label of their own, and
# currency label values in all (CAD, USD and the default currency among them).
ZONE_LABEL_LIMIT = 200
OTHER_ZONES = "other"
CURRENCY_LABEL_LIMIT = 10
OTHER_CURRENCIES = "other"

ROW_PREFIX = "zone:"
SESSION_PREFIX = "session:"
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S"


# --------------------------------------------------------------------------- folding (pure)


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


# --------------------------------------------------------------------------- queries (pure)


@dataclass(frozen=True)
class StatsQuery:
    """Filters of ``/stats/zones``: zones (matched case-blind, as the Controller does),
    a vendor, and a period of UTC days (inclusive)."""

    zones: frozenset[str] | None = None
    vendor: str | None = None
    since: date | None = None
    until: date | None = None

    def wants(self, zone: str, vendor: str) -> bool:
        if self.zones is not None and zone.casefold() not in self.zones:
            return False
        return self.vendor is None or vendor == self.vendor

    @property
    def has_period(self) -> bool:
        return self.since is not None or self.until is not None

    def days(self, today: date) -> tuple[date, date]:
        """The days listed: the period (open ends: all days before, up to today), or the
        last ``DEFAULT_DAYS`` days without one."""
        if self.since is None and self.until is None:
            return today - timedelta(days=DEFAULT_DAYS - 1), today
        return self.since or date.min, self.until or today

    def params(self) -> dict[str, str]:
        out = {}
        if self.zones is not None:
            out["zones"] = ",".join(sorted(self.zones))
        if self.vendor is not None:
            out["vendor"] = self.vendor
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.until is not None:
            out["until"] = self.until.isoformat()
        return out


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a day, YYYY-MM-DD (got {text!r})") from None


def parse_query(params: Mapping[str, str]) -> StatsQuery:
    """A ``StatsQuery`` from query parameters ``zones`` (comma list), ``vendor``, ``since``,
    ``until``; ``ValueError`` with the reason for a bad one."""
    zones_text = params.get("zones")
    zones = None
    if zones_text:
        zones = frozenset(z.strip().casefold() for z in zones_text.split(",") if z.strip())
    since = parse_day(params["since"], "since") if params.get("since") else None
    until = parse_day(params["until"], "until") if params.get("until") else None
    if since is not None and until is not None and since > until:
        raise ValueError("since is after until")
    return StatsQuery(zones or None, params.get("vendor") or None, since, until)


def _empty_figures() -> dict[str, Any]:
    return {"created": 0, "updated": 0, "deleted": 0, "revenue": {}, "rejected": {}}


def add_figures(into: dict[str, Any], figures: Mapping[str, Any]) -> None:
    """Add one set of figures to another, revenue exactly (decimal text in and out)."""
    for name in ("created", "updated", "deleted", "live", "active"):
        if name in figures:
            into[name] = into.get(name, 0) + figures[name]
    for currency, amount in figures.get("revenue", {}).items():
        into["revenue"][currency] = str(
            Decimal(into["revenue"].get(currency, "0.00")) + Decimal(amount)
        )
    for code, count in figures.get("rejected", {}).items():
        into["rejected"][code] = into["rejected"].get(code, 0) + count


def partial_rows(
    items: Iterable[tuple[str, Any]],
    partitions: set[int],
    query: StatsQuery,
    days: tuple[date, date],
    now: datetime,
) -> list[dict[str, Any]]:
    """Rows of the table ``items`` in ``partitions`` that ``query`` wants, summed across
    partitions per (zone, vendor, day): all-time rows (``day`` null, with live and active
    at ``now``) and day rows within ``days``."""
    first, last = days[0].isoformat(), days[1].isoformat()
    summed: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for key, row in items:
        if not key.startswith(ROW_PREFIX) or row is None or row["partition"] not in partitions:
            continue
        if not query.wants(row["zone"], row["vendor"]):
            continue
        day = row["day"]
        if day is not None and not first <= day <= last:
            continue
        figures = {name: row[name] for name in ("created", "updated", "deleted")}
        figures["revenue"], figures["rejected"] = row["revenue"], row["rejected"]
        if day is None:
            figures["live"], figures["active"] = row["live"], active_at(row, now)
        target = summed.setdefault(
            (row["zone"], row["vendor"], day),
            {"zone": row["zone"], "vendor": row["vendor"], "day": day, **_empty_figures()},
        )
        add_figures(target, figures)
    return list(summed.values())


def _public(zone: str) -> str | None:
    return zone or None


def answer(
    partials: Iterable[Mapping[str, Any]],
    total_partitions: int,
    query: StatsQuery,
    now: datetime,
) -> dict[str, Any]:
    """The ``/stats/zones`` answer from the partial answers of the workers.

    Each partial is ``{"partitions": [...], "rows": partial_rows(...)}``; the partitions
    of different partials are disjoint. Without a period the counts are all-time; with one
    they are the sum of its days. ``live`` and ``active`` are always as of ``now``.
    """
    covered: set[int] = set()
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    day_rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    since, until = query.since, query.until
    for partial in partials:
        covered.update(partial["partitions"])
        for row in partial["rows"]:
            zone, vendor, day = row["zone"], row["vendor"], row["day"]
            total = totals.setdefault(
                (zone, vendor),
                {"zone": zone, "vendor": vendor, **_empty_figures(), "live": 0, "active": 0},
            )
            if day is None:
                add_figures(total, {"live": row["live"], "active": row["active"]})
                if not query.has_period:
                    add_figures(
                        total, {k: v for k, v in row.items() if k not in ("live", "active")}
                    )
                continue
            in_period = (since is None or since.isoformat() <= day) and (
                until is None or day <= until.isoformat()
            )
            if query.has_period and in_period:
                add_figures(total, row)
            target = day_rows.setdefault(
                (day, zone, vendor),
                {"day": day, "zone": zone, "vendor": vendor, **_empty_figures()},
            )
            add_figures(target, row)
    zones: dict[str, dict[str, Any]] = {}
    for (zone, _), figures in sorted(totals.items()):
        target = zones.setdefault(zone, {"zone": zone, **_empty_figures(), "live": 0, "active": 0})
        add_figures(target, figures)
    missing = sorted(set(range(total_partitions)) - covered)
    return {
        "as_of": now.astimezone(UTC).isoformat(timespec="seconds"),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "complete": not missing,
        "partitions": total_partitions,
        "missing_partitions": missing,
        "zones": [{**z, "zone": _public(z["zone"])} for z in zones.values()],
        "vendors": [{**v, "zone": _public(v["zone"])} for _, v in sorted(totals.items())],
        "days": [{**d, "zone": _public(d["zone"])} for _, d in sorted(day_rows.items())],
    }


# --------------------------------------------------------------------------- metrics

ZONE_PERMITS = Counter(
    "parkstream_zone_permits_total",
    "Permits applied by the Controller, per zone, vendor and action.",
    ["zone", "vendor", "action"],
)
ZONE_REVENUE = Counter(
    "parkstream_zone_revenue_total",
    "Amount paid for applied permits, in the currency's units (increases only).",
    ["zone", "currency"],
)

# Which label values a zone and a currency get. Bounded whatever vendors send:
#
#   zone      ""     a permit without a zone
#             Z      a zone of the operator's alias table (PARKSTREAM_ZONE_ALIASES), always
#             Z      a zone of the Controller's last good permits/stats answer (consumers/
#                    zones.py refreshes it), at most ZONE_LABEL_LIMIT: those with most permits
#             other  every other zone (a vendor's made-up or misspelt zone)
#   currency  ""     none; CAD, USD and the default currency, always; the first other codes
#                    seen up to CURRENCY_LABEL_LIMIT values; then other
#
# Zones match as the Controller matches them; the exact figures of every zone and currency
# stay in the zone_stats table (/stats/zones), which labels do not limit.


def zone_match_key(zone: str) -> str:
    """A zone as the Controller matches it: trimmed (the contract trims the field) and
    case-blind (permits/stats, like ``/stats/zones``)."""
    return zone.strip().casefold()


class ZoneLabels:
    """The zones with a ``zone`` label of their own (the table above); pure, no I/O."""

    def __init__(self, configured: Iterable[str] = (), limit: int = ZONE_LABEL_LIMIT) -> None:
        self.limit = limit
        self._configured: dict[str, str] = {}
        for zone in configured:
            if zone_match_key(zone):
                self._configured.setdefault(zone_match_key(zone), zone)
        self._reported: dict[str, str] = {}

    def label(self, zone: str | None) -> str:
        """The label value of ``zone``: its configured spelling, else the Controller's,
        else ``other``; ``""`` for no zone."""
        key = zone_match_key(zone or "")
        if not key:
            return ""
        return self._configured.get(key) or self._reported.get(key) or OTHER_ZONES

    def learn(self, answer: Mapping[str, Any]) -> bool:
        """Take the reported zones from a permits/stats answer (``{"data": [{"type", "zone",
        "total"}]}``); True when the labelled zones changed. Raises ValueError, changing
        nothing, for an answer not of that shape."""
        rows = answer.get("data")
        if not isinstance(rows, list):
            raise ValueError("permits/stats answer without a data list")
        totals: dict[str, int] = {}
        names: dict[str, str] = {}
        for row in rows:
            if not isinstance(row, Mapping):
                raise ValueError("permits/stats row is not an object")
            zone, total = row.get("zone"), row.get("total", "0")
            if zone is not None and not isinstance(zone, str):
                raise ValueError("permits/stats zone is not text")
            if not isinstance(total, str | int) or not str(total).strip().isdigit():
                raise ValueError("permits/stats total is not a count")
            key = zone_match_key(zone or "")
            if not key or key in self._configured:
                continue
            names.setdefault(key, zone or "")
            totals[key] = totals.get(key, 0) + int(str(total))
        ranked = sorted(totals, key=lambda key: (-totals[key], key))[: self.limit]
        reported = {key: names[key] for key in ranked}
        changed = reported != self._reported
        self._reported = reported
        return changed

    @property
    def reported(self) -> int:
        """How many Controller-reported zones have a label."""
        return len(self._reported)

    @property
    def values(self) -> set[str]:
        """Every value :meth:`label` can give now."""
        return {*self._configured.values(), *self._reported.values(), "", OTHER_ZONES}


class CurrencyLabels:
    """The ``currency`` label values: ``always`` (the documented CAD and USD, the default
    currency), the first other codes seen up to ``limit`` values in all, then ``other``."""

    def __init__(self, always: Iterable[str], limit: int = CURRENCY_LABEL_LIMIT) -> None:
        self._always = frozenset(always)
        self._seen: set[str] = set()
        self.limit = limit

    def label(self, currency: str) -> str:
        if not currency or currency in self._always or currency in self._seen:
            return currency
        if len(self._always) + len(self._seen) < self.limit:
            self._seen.add(currency)
            return currency
        return OTHER_CURRENCIES


_ACTION_OF = {count: action for action, count in COUNTS.items()}


class MetricLabels:
    """One worker's labels: which zones and currencies get a label value of their own
    (``zone_labels``, ``currency_labels``), and the series made under each zone label.

    Without arguments, no zone is configured and CAD and USD are the always-labelled
    currencies; ``configure_labels`` adds the operator's zones and default currency when
    the worker is assembled (``register``).
    """

    def __init__(
        self,
        zone_labels: ZoneLabels | None = None,
        currency_labels: CurrencyLabels | None = None,
    ) -> None:
        self.zone_labels = ZoneLabels(()) if zone_labels is None else zone_labels
        self.currency_labels = (
            CurrencyLabels(DOCUMENTED_CURRENCIES) if currency_labels is None else currency_labels
        )
        # Label values of the series made per zone label, so that a zone losing its label
        # loses its series too: /metrics never holds more zones than zone_labels.values.
        self._zone_series: dict[str, set[tuple[str, str]]] = {}  # zone -> {(vendor, action)}
        self._revenue_series: dict[str, set[str]] = {}  # zone -> {currency}

    def zone_label(self, zone: str) -> str:
        """The ``zone`` label value of a zone (``ZoneLabels.label`` of the worker's labels)."""
        return self.zone_labels.label(zone)

    def count_in_metrics(self, change: Change) -> None:
        """Add a counted change to the zone counters (revenue increases only: a counter)."""
        zone = self.zone_label(change.zone)
        if change.count is not None:
            action = _ACTION_OF[change.count]
            ZONE_PERMITS.labels(zone, change.vendor, action).inc()
            self._zone_series.setdefault(zone, set()).add((change.vendor, action))
        for currency, delta in change.revenue.items():
            if delta > 0:
                money = self.currency_labels.label(currency)
                ZONE_REVENUE.labels(zone, money).inc(float(delta))
                self._revenue_series.setdefault(zone, set()).add(money)

    def learn_controller_zones(self, answer: Mapping[str, Any]) -> bool:
        """Relabel from a permits/stats answer: the Controller's zones get labels, the series
        of zones that lost theirs are removed (later permits there count as ``other``). True
        when the labelled zones changed; ValueError, nothing changed, for a malformed answer."""
        if not self.zone_labels.learn(answer):
            return False
        kept = self.zone_labels.values
        for zone in [z for z in self._zone_series if z not in kept]:
            for vendor, action in self._zone_series.pop(zone):
                ZONE_PERMITS.remove(zone, vendor, action)
        for zone in [z for z in self._revenue_series if z not in kept]:
            for currency in self._revenue_series.pop(zone):
                ZONE_REVENUE.remove(zone, currency)
        return True


def configure_labels(settings: Settings, zones: ZoneDirectory) -> MetricLabels:
    """Label the operator's configured zones and default currency, whatever vendors send."""
    return MetricLabels(
        ZoneLabels(zones.aliases.values()),
        CurrencyLabels((*DOCUMENTED_CURRENCIES, settings.default_currency)),
    )


# --------------------------------------------------------------------------- the worker side


@dataclass(frozen=True)
class Folded:
    """The table writes one result makes (session row last), and the change to count."""

    writes: list[tuple[str, Any]]
    change: Change | None


class Stats:
    """One worker's statistics: its ``zone_stats`` table, the rows folded but not
    acknowledged yet, the partitions pruned today, and its metric labels. ``register``
    builds it; the agent, the views and the zone refresh (``streams.zones``) use it."""

    def __init__(self, table: Any, labels: MetricLabels) -> None:
        # Aggregate rows and session state in one table: one changelog, whose per-partition
        # order makes a stored session row prove its aggregate rows (see the module
        # docstring). The worker's Faust table; a plain mapping in the pure fold's tests.
        self.table = table
        self.labels = labels
        self._pruned_on: dict[int, str] = {}
        # Rows folded but not acknowledged yet: the next results read them. Cleared at a
        # revocation: what was not made durable is folded again from the redelivered results.
        self._pending: dict[str, Any] = {}

    def forget_pending(self) -> None:
        """At a revocation: drop the rows not acknowledged yet."""
        self._pending.clear()

    def _current(self, key: str) -> Any:
        return self._pending[key] if key in self._pending else self.table.get(key)

    def stale_keys(self, partition: int, now: datetime) -> list[str]:
        """Once a day per partition: its expired day rows and sessions (to delete)."""
        today = day_of(now)
        if self._pruned_on.get(partition) == today:
            return []
        self._pruned_on[partition] = today
        return [
            key
            for key, value in list(self.table.items())
            if value is not None
            and value.get("partition") == partition
            and expired(key, value, now)
        ]

    def fold_event(
        self,
        result: dict[str, Any],
        partition: int,
        offset: int,
        key: str,
        now: datetime | None = None,
    ) -> Folded | None:
        """Fold one decoded result into table writes; ``None`` when nothing changes.

        Reads the table as it will be once the writes of earlier results are acknowledged.
        """
        now = now or datetime.now(UTC)
        skey = session_key(result["session_id"]) if result.get("session_id") else None
        folded = fold_result(result, partition, offset, self._current(skey) if skey else None)
        if folded is None:
            return None
        if folded.duplicate:
            log.info(
                'stats: duplicate result not counted command_id="%s" key="%s" error_code="%s"',
                result["command_id"],
                key,
                result.get("error_code") or "",
            )
            return None
        writes: list[tuple[str, Any]] = []
        change = folded.change
        counted = False
        if change is not None:
            for day in (change.day, None):
                rkey = row_key(partition, change.zone, change.vendor, day)
                new = apply_change(self._current(rkey), change, partition, offset, day, now)
                if new is not None:
                    writes.append((rkey, new))
                    counted = counted or day is None
            log.debug(
                'stats folded command_id="%s" key="%s" zone="%s" outcome="%s" error_code="%s"',
                result["command_id"],
                key,
                change.zone,
                result["outcome"],
                result.get("error_code") or "",
            )
        if folded.session is not None and skey is not None:
            writes.append((skey, folded.session))  # last: it proves the rows above (docstring)
        if not writes:
            return None
        return Folded(writes, change if counted else None)

    async def _folded_durable(self, folded: Folded, acks: list[Any]) -> None:
        """The tail of a folded result: its rows acknowledged, then kept and counted."""
        await acknowledged_all(acks)
        apply_locally(self.table, folded.writes)
        for key, value in folded.writes:
            if self._pending.get(key) is value:
                del self._pending[key]
        if folded.change is not None:
            self.labels.count_in_metrics(folded.change)

    def head(self, worker: WorkerApp) -> Head:
        """The stats agent's head: decode a result, prune, fold, send the table writes."""

        async def head(event: faust.EventT[Any], lease: Lease) -> Awaitable[None] | None:
            EVENTS_CONSUMED.labels("results").inc()
            message = event.message
            try:
                _, result = codec().decode(message.value, expected="ControllerResult")
            except DecodeError as exc:
                letter = dead_letter(message, "undecodable", error_message=str(exc))
                await worker.send_dead_letter(message, letter, lease)
                return None
            now = datetime.now(UTC)
            stale = self.stale_keys(message.partition, now)
            if stale:
                await durable_delete(self.table, stale, lease)
                log.info("stats pruned partition=%d keys=%d", message.partition, len(stale))
            key = message.key.decode("utf-8", "replace") if message.key else ""
            folded = self.fold_event(result, message.partition, message.offset, key, now)
            if folded is None:
                return None
            self._pending.update(folded.writes)
            acks = await send_table_writes(self.table, folded.writes, lease)
            return self._folded_durable(folded, acks)

        return head


# --------------------------------------------------------------------------- web views

PEER_TIMEOUT_SECONDS = 5.0


def _bad_request(web: Any, reason: str) -> Any:
    return web.json({"error": reason}, status=400)


class _Views:
    """``/stats/zones`` and ``/stats/zones/partial`` of one worker."""

    def __init__(self, worker: WorkerApp, table: Any) -> None:
        self.app = worker.app
        self.table = table
        self.partitions = worker.settings.topic_partitions
        self.results_topic = worker.results_topic
        # Results partitions whose rows are whole: recovered from the changelog since the
        # last rebalance began. Until then a partition's figures are partial and it is
        # reported missing.
        self.recovered: set[int] = set()

    def active_partitions(self) -> set[int]:
        results = self.results_topic.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == results}

    async def rebalancing(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.recovered.clear()

    async def table_recovered(self) -> None:
        self.recovered.clear()
        self.recovered.update(self.active_partitions())

    def owned_partitions(self) -> set[int]:
        """Results partitions this worker actively owns and has recovered (standby copies
        and partitions still recovering are not served)."""
        return self.active_partitions() & self.recovered

    def local_partial(self, query: StatsQuery, wanted: set[int], now: datetime) -> dict[str, Any]:
        owned = self.owned_partitions() & wanted
        days = query.days(now.date())
        rows = partial_rows(self.table.items(), owned, query, days, now)
        return {"partitions": sorted(owned), "rows": rows}

    def hosts(self) -> dict[str, set[int]]:
        """Worker URL -> the table partitions it actively owns (from the last rebalance)."""
        changelog = self.table.changelog_topic.get_topic_name()
        hosts: dict[str, set[int]] = {}
        for url, topics in self.app.router.table_metadata(self.table.name).items():
            partitions = set(topics.get(changelog, ()))
            if partitions:
                hosts[str(url)] = partitions
        return hosts

    async def peer_partial(
        self, url: str, query: StatsQuery, partitions: set[int]
    ) -> dict[str, Any]:
        params = {**query.params(), "partitions": ",".join(str(p) for p in sorted(partitions))}
        try:
            async with self.app.http_client.get(
                f"{url.rstrip('/')}/stats/zones/partial",
                params=params,
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS),
            ) as response:
                response.raise_for_status()
                answer: dict[str, Any] = await response.json()
                return answer
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning('stats: a worker did not answer url="%s" error="%s"', url, exc)
            return {"partitions": [], "rows": []}

    async def stats_zones(self, web: Any, request: Any) -> Any:
        """Per-zone statistics of every worker: ``?zones=a,b&vendor=v&since=D&until=D``."""
        try:
            query = parse_query(request.query)
        except ValueError as exc:
            return _bad_request(web, str(exc))
        now = datetime.now(UTC)
        me = str(self.app.conf.canonical_url)
        hosts = self.hosts()
        # Partitions no worker holds in the last assignment's metadata are asked of this
        # one; each partition is asked of one worker only, so nothing is counted twice.
        mine = set(range(self.partitions)) - set().union(set(), *hosts.values())
        peers = []
        for url, partitions in hosts.items():
            if url == me:
                mine |= partitions
            else:
                peers.append(self.peer_partial(url, query, partitions))
        partials = [self.local_partial(query, mine, now), *await asyncio.gather(*peers)]
        return web.json(answer(partials, self.partitions, query, now))

    async def stats_zones_partial(self, web: Any, request: Any) -> Any:
        """This worker's share: the asked ``partitions`` it actively owns (used by /stats/zones)."""
        try:
            query = parse_query(request.query)
            wanted = {int(p) for p in request.query.get("partitions", "").split(",") if p.strip()}
        except ValueError as exc:
            return _bad_request(web, str(exc))
        return web.json(self.local_partial(query, wanted, datetime.now(UTC)))


def register(worker: WorkerApp, zones: ZoneDirectory) -> Stats:
    """Add the stats agent (table ``zone_stats``) and its views; label the operator's zones.

    Returns the worker's ``Stats``: its table and labels (the zone refresh takes them)."""
    labels = configure_labels(worker.settings, zones)
    stats = Stats(worker.table("zone_stats", key_type=str), labels)
    worker.on_revocation(stats.forget_pending)
    views = _Views(worker, stats.table)
    app = worker.app

    async def fold_results(stream: faust.StreamT[Any]) -> None:
        """Fold every Controller result into the per-zone statistics."""
        await worker.pipeline("fold_results").run(stream, stats.head(worker))

    async def stats_zones(web: Any, request: Any) -> Any:
        return await views.stats_zones(web, request)

    async def stats_zones_partial(web: Any, request: Any) -> Any:
        return await views.stats_zones_partial(web, request)

    app.agent(worker.results_topic, name=f"{__name__}.fold_results")(fold_results)
    app.on_partitions_revoked.connect(views.rebalancing)  # type: ignore[arg-type]
    stats.table.on_recover(views.table_recovered)
    app.page("/stats/zones")(stats_zones)
    app.page("/stats/zones/partial")(stats_zones_partial)
    return stats
