"""Answering ``/stats/zones``: pure queries over the table's rows, no I/O.

``parse_query`` reads the query parameters into a ``StatsQuery``; ``partial_rows`` is one
worker's share (the rows of the partitions it owns, summed across partitions); ``answer``
sums the shares of every worker into the answer docs/stats.md shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from streams.stats.fold import ROW_PREFIX, active_at

# Days listed when a query names no period.
DEFAULT_DAYS = 7


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
