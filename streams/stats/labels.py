"""The per-zone metrics and their bounded label sets: which zones and currencies get a label.

Every counted change adds to ``parkstream_zone_permits_total`` and
``parkstream_zone_revenue_total`` (docs/metrics.md). ``ZoneLabels`` and ``CurrencyLabels``
keep their label values bounded whatever vendors send; ``MetricLabels`` holds one worker's
label sets and the series made under them, and ``configure_labels`` makes it from the
operator's settings. No I/O here: ``streams.zones`` asks the Controller for its zones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter

from foundation.settings import Settings
from schemas.controller import DOCUMENTED_CURRENCIES
from streams.enrich import ZoneDirectory
from streams.stats.fold import COUNTS, Change

# Metric labels (docs/metrics.md): Controller-reported zones with a label of their own, and
# currency label values in all (CAD, USD and the default currency among them).
ZONE_LABEL_LIMIT = 200
OTHER_ZONES = "other"
CURRENCY_LABEL_LIMIT = 10
OTHER_CURRENCIES = "other"

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
#             Z      a zone of the Controller's last good permits/stats answer (streams/
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
