"""The business dashboard: revenue and permits per zone, vendor and action."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row
from grafana_foundation_sdk.models.dashboard import DashboardLinkType

from dashboards.panels import (
    WIDTH_HALF,
    WIDTH_THIRD,
    by,
    increase,
    query,
    stat,
    timeseries,
    total,
)
from dashboards.variables import datasource_variable

REVENUE = "parkstream_zone_revenue_total"
PERMITS = "parkstream_zone_permits_total"
PERMITS_CREATED = 'parkstream_zone_permits_total{action="CREATE"}'

UID = "parkstream-zones"
TITLE = "parkstream / Zones"


def build() -> Dashboard:
    """Per-zone revenue and permits, from the counters the worker's stats tables feed."""
    return (
        Dashboard(TITLE)
        .uid(UID)
        .description("Revenue and permits the Controller applied, per zone, vendor and action.")
        .tags(["parkstream"])
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
        .editable()
        .with_variable(datasource_variable())
        .link(
            DashboardLink("parkstream")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["parkstream"])
            .as_dropdown(True)
            .keep_time(True)
        )
        .with_row(Row("Last 24 hours"))
        .with_panel(
            stat(
                "Revenue, last 24 hours",
                "Amount paid for permits the Controller applied, all zones, per currency.",
                "none",
                query(by("currency", increase(REVENUE, "24h")), "{{currency}}"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            stat(
                "Permits, last 24 hours",
                "Permits the Controller applied, all zones and actions.",
                "short",
                query(total(f"sum({increase(PERMITS, '24h')})"), "permits"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            stat(
                "New permits, last 24 hours",
                "Permits created (action CREATE), all zones.",
                "short",
                query(
                    total(f"sum({increase(PERMITS_CREATED, '24h')})"),
                    "created",
                ),
                width=WIDTH_THIRD,
            )
        )
        .with_row(Row("Per zone"))
        .with_panel(
            timeseries(
                "Revenue per hour by zone",
                "Amount paid per hour for applied permits, per zone and currency.",
                "none",
                query(
                    by("zone, currency", increase(REVENUE, "1h")),
                    "{{zone}} {{currency}}",
                ),
                width=WIDTH_HALF,
                stacked=True,
            )
        )
        .with_panel(
            timeseries(
                "Permits per hour by zone",
                "Permits applied per hour, per zone.",
                "short",
                query(by("zone", increase(PERMITS, "1h")), "{{zone}}"),
                width=WIDTH_HALF,
                stacked=True,
            )
        )
        .with_panel(
            timeseries(
                "Permits per hour by vendor",
                "Which vendors' permits the Controller applied.",
                "short",
                query(by("vendor", increase(PERMITS, "1h")), "{{vendor}}"),
                width=WIDTH_HALF,
                stacked=True,
            )
        )
        .with_panel(
            timeseries(
                "Permits per hour by action",
                "Creates, updates (extensions) and deletes applied per hour.",
                "short",
                query(by("action", increase(PERMITS, "1h")), "{{action}}"),
                width=WIDTH_HALF,
                stacked=True,
            )
        )
    )
