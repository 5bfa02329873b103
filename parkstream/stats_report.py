"""``parkstream stats``: the worker's per-zone statistics as a terminal table, and
``--compare``: parkstream's live permits per zone against the Controller's permits/stats.

Exit codes::

    0  figures shown; with --compare: every zone agrees
    1  --compare: a zone differs, or has permits the Controller's stats do not show
    2  bad arguments (a malformed day, --compare with a period or a vendor)
    3  figures unavailable: the worker or the Controller did not answer, or not every
       partition's statistics answered (a rebalance, a worker down)

The figures are read from the worker's ``GET /stats/zones`` (any worker: it gathers from
the others); the Controller's from ``permits/stats`` with parkstream's own token.
docs/stats.md says what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

import httpx

from foundation.errors import PermanentError, TransientError
from foundation.settings import Settings

OK, DIFFERENT, USAGE, UNAVAILABLE = 0, 1, 2, 3
WORKER_TIMEOUT_SECONDS = 15.0
NO_ZONE = "(no zone)"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def add_stats_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``parkstream stats`` options (``run_stats`` takes them by the same names)."""
    parser.add_argument(
        "--zones",
        metavar="ZONE[,ZONE...]",
        help="only these zones (comma list; matched case-blind, as the Controller does)",
    )
    parser.add_argument("--vendor", help="only this vendor's permits")
    parser.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="first UTC day counted")
    parser.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="last UTC day counted")
    parser.add_argument(
        "--by",
        choices=("zone", "vendor", "day"),
        default="zone",
        help="one row per zone (default), per zone and vendor, or per day, zone and vendor",
    )
    parser.add_argument("--json", action="store_true", help="print the worker's JSON answer")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compare live permits per zone with the Controller's permits/stats; "
        "exit 1 when they differ",
    )
    parser.add_argument(
        "--worker-url",
        metavar="URL",
        help="a worker's web address (default PARKSTREAM_WORKER_URL)",
    )


def zones_argument(text: str | None) -> list[str] | None:
    """``--zones a,b`` as a list (``None``: all zones)."""
    if not text:
        return None
    zones = [z.strip() for z in text.split(",") if z.strip()]
    return zones or None


# --------------------------------------------------------------------------- rendering (pure)


def _money(revenue: Mapping[str, str]) -> str:
    return ", ".join(
        f"{cur} {amount}" if cur else amount for cur, amount in sorted(revenue.items())
    )


def _codes(rejected: Mapping[str, int]) -> str:
    return ", ".join(f"{code or 'none'}: {n}" for code, n in sorted(rejected.items()))


def _zone(zone: str | None) -> str:
    return NO_ZONE if zone is None else zone


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int]) -> str:
    """A plain-text table: columns padded, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def render_stats(data: Mapping[str, Any], by: str = "zone") -> str:
    """The /stats/zones answer as a table: per zone, per zone and vendor, or per day."""
    counts = ("created", "updated", "deleted")
    if by == "day":
        headers = ["day", "zone", "vendor", *counts, "revenue", "rejected"]
        rows = [
            [
                d["day"],
                _zone(d["zone"]),
                d["vendor"],
                *(d[c] for c in counts),
                _money(d["revenue"]),
                _codes(d["rejected"]),
            ]
            for d in data["days"]
        ]
        numeric = {3, 4, 5}
    else:
        lead = ["zone", "vendor"] if by == "vendor" else ["zone"]
        source = data["vendors"] if by == "vendor" else data["zones"]
        headers = [*lead, *counts, "live", "active", "revenue", "rejected"]
        rows = [
            [
                _zone(r["zone"]),
                *([r["vendor"]] if by == "vendor" else []),
                *(r[c] for c in counts),
                r["live"],
                r["active"],
                _money(r["revenue"]),
                _codes(r["rejected"]),
            ]
            for r in source
        ]
        numeric = set(range(len(lead), len(lead) + 5))
    if data.get("since") or data.get("until"):
        period = f"{data.get('since') or '...'} to {data.get('until') or '...'} (UTC days)"
    else:
        period = "all time" if by != "day" else "the last 7 UTC days"
    head = f"parkstream stats as of {data['as_of']}, {period}; live and active as of now"
    body = table(headers, rows, numeric) if rows else "(no permits)"
    return f"{head}\n{body}"


@dataclass(frozen=True)
class Comparison:
    """Per zone: parkstream's live permits against the Controller's permits/stats."""

    rows: list[tuple[str | None, int, int]]  # zone, parkstream, Controller
    unreported: list[tuple[str | None, int]]  # zones with live permits the Controller omits

    @property
    def differing(self) -> list[tuple[str | None, int, int]]:
        return [row for row in self.rows if row[1] != row[2]]

    @property
    def agrees(self) -> bool:
        return not self.differing and not self.unreported


def controller_totals(body: Mapping[str, Any]) -> dict[str | None, int]:
    """Permits per zone from a permits/stats answer (summed over permit types)."""
    totals: dict[str | None, int] = {}
    for entry in body.get("data") or []:
        zone = entry.get("zone") or None
        totals[zone] = totals.get(zone, 0) + int(str(entry.get("total", "0")))
    return totals


def _fold(zone: str | None) -> str | None:
    return None if zone is None else zone.casefold()


def compare_zones(ours: Mapping[str | None, int], theirs: Mapping[str | None, int]) -> Comparison:
    """Match zones case-blind (the Controller's collation); a zone parkstream has live
    permits in that the Controller does not report is ``unreported``, not a row."""
    names: dict[str | None, str | None] = {}
    mine: dict[str | None, int] = {}
    controller: dict[str | None, int] = {}
    for zone, n in ours.items():
        names.setdefault(_fold(zone), zone)
        mine[_fold(zone)] = mine.get(_fold(zone), 0) + n
    for zone, n in theirs.items():
        names.setdefault(_fold(zone), zone)
        controller[_fold(zone)] = controller.get(_fold(zone), 0) + n
    rows, unreported = [], []
    for key in sorted(names, key=lambda k: (k is None, k or "")):
        if key not in controller:
            if mine.get(key, 0) > 0:
                unreported.append((names[key], mine[key]))
            continue
        rows.append((names[key], mine.get(key, 0), controller[key]))
    return Comparison(rows, unreported)


def render_comparison(result: Comparison) -> str:
    lines = []
    if result.rows:
        lines.append(
            table(
                ["zone", "parkstream", "controller", "difference"],
                [(_zone(z), a, b, f"{a - b:+d}" if a != b else "0") for z, a, b in result.rows],
                {1, 2, 3},
            )
        )
    if result.unreported:
        lines.append(
            "Zones the Controller's permits/stats does not report, with parkstream's live "
            "permits (a zone the Controller does not know: disconnected records; or every "
            "permit of the zone is gone there):"
        )
        lines += [f"  {_zone(z)}: {n}" for z, n in result.unreported]
    differing = len(result.differing)
    lines.append(
        f"{len(result.rows)} zone(s) compared, {differing} differ"
        + (
            f", {len(result.unreported)} not reported by the Controller"
            if result.unreported
            else ""
        )
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- I/O


def fetch_stats(
    worker_url: str,
    zones: Sequence[str] | None,
    vendor: str | None,
    since: date | None,
    until: date | None,
) -> dict[str, Any]:
    """The worker's ``/stats/zones`` answer; ``httpx.HTTPError`` when it did not give one."""
    params = {}
    if zones:
        params["zones"] = ",".join(zones)
    if vendor:
        params["vendor"] = vendor
    if since:
        params["since"] = since.isoformat()
    if until:
        params["until"] = until.isoformat()
    response = httpx.get(
        f"{worker_url.rstrip('/')}/stats/zones", params=params, timeout=WORKER_TIMEOUT_SECONDS
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def controller_stats(settings: Settings, zones: Sequence[str] | None) -> dict[str, Any]:
    from foundation.controller import ControllerClient

    async with ControllerClient.from_settings(settings, max_connections=1) as controller:
        reply = await controller.permit_stats(zones)
    return reply.body


def run_stats(
    settings: Settings,
    *,
    zones: Sequence[str] | None,
    vendor: str | None,
    since: date | None,
    until: date | None,
    compare: bool,
    worker_url: str | None,
    by: str = "zone",
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print the statistics (or the comparison) and return the exit code (module docstring)."""
    out = out or sys.stdout
    err = sys.stderr
    if since and until and since > until:
        print("parkstream stats: --since is after --until", file=err)
        return USAGE
    if compare and (since or until or vendor):
        print(
            "parkstream stats: --compare counts all live permits of a zone, as the Controller's "
            "permits/stats does (it has no period and no vendor): leave out --since, --until "
            "and --vendor",
            file=err,
        )
        return USAGE
    if compare and not settings.controller_api_token:
        print("parkstream stats: --compare needs PARKSTREAM_CONTROLLER_API_TOKEN", file=err)
        return USAGE
    url = worker_url or settings.worker_url
    try:
        data = fetch_stats(url, zones, vendor, since, until)
    except httpx.HTTPError as exc:
        print(f"parkstream stats: the worker at {url} did not answer: {exc}", file=err)
        return UNAVAILABLE
    if not data["complete"]:
        missing = ", ".join(str(p) for p in data["missing_partitions"])
        print(
            f"parkstream stats: incomplete: no worker answered for partition(s) {missing} "
            "(a rebalance or a worker down); try again",
            file=err,
        )
    if not compare:
        print(json.dumps(data, indent=2) if as_json else render_stats(data, by), file=out)
        return OK if data["complete"] else UNAVAILABLE
    if not data["complete"]:
        return UNAVAILABLE
    try:
        body = asyncio.run(controller_stats(settings, zones))
    except (TransientError, PermanentError) as exc:
        print(f"parkstream stats: the Controller's permits/stats failed: {exc}", file=err)
        return UNAVAILABLE
    ours = {z["zone"]: z["live"] for z in data["zones"]}
    result = compare_zones(ours, controller_totals(body))
    if as_json:
        print(
            json.dumps(
                {
                    "zones": [
                        {"zone": z, "parkstream": a, "controller": b, "difference": a - b}
                        for z, a, b in result.rows
                    ],
                    "not_reported_by_controller": [
                        {"zone": z, "parkstream": n} for z, n in result.unreported
                    ],
                    "agrees": result.agrees,
                },
                indent=2,
            ),
            file=out,
        )
    else:
        print(render_comparison(result), file=out)
    return OK if result.agrees else DIFFERENT


def run_from_args(settings: Settings, args: argparse.Namespace) -> int:
    """``run_stats`` with the options ``add_stats_arguments`` parsed (for parkstream/cli.py)."""
    return run_stats(
        settings,
        zones=zones_argument(args.zones),
        vendor=args.vendor,
        since=args.since,
        until=args.until,
        compare=args.compare,
        worker_url=args.worker_url,
        by=args.by,
        as_json=args.json,
    )
