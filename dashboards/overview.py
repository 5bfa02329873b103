"""The operators' dashboard: is every permit getting through, and if not, where is it stuck?"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row
from grafana_foundation_sdk.models.dashboard import DashboardLinkType

from dashboards.panels import (
    WIDTH_HALF,
    WIDTH_QUARTER,
    WIDTH_THIRD,
    by,
    increase,
    quantile,
    query,
    rate,
    stat,
    timeseries,
    total,
)
from dashboards.variables import datasource_variable

UID = "parkstream-overview"
TITLE = "parkstream / Overview"

GATEWAY_ACCEPTED = 'parkstream_gateway_requests_total{outcome="accepted"}'
CIRCUIT_STATES = {
    "0": ("closed", "green"),
    "1": ("half-open", "yellow"),
    "2": ("open", "red"),
}


def _headline(d: Dashboard) -> Dashboard:
    return (
        d.with_row(Row("Now"))
        .with_panel(
            stat(
                "Permits accepted / s",
                "Vendor pushes the gateway accepted (the broker acknowledged them).",
                "reqps",
                query(
                    total(f"sum({rate(GATEWAY_ACCEPTED)})"),
                    "accepted",
                ),
            )
        )
        .with_panel(
            stat(
                "Controller circuit",
                "Closed: calls flow. Open: the Controller keeps failing transiently, calls are "
                "paused and the backlog waits in Kafka. Half-open: probing.",
                "none",
                query(total("max(parkstream_circuit_state)"), "circuit"),
                thresholds=[(None, "green"), (1, "yellow"), (2, "red")],
                mappings=CIRCUIT_STATES,
            )
        )
        .with_panel(
            stat(
                "Dead letters, last hour",
                "Records sent to parkstream.dlq.v1: each needs a fix and `parkstream dlq replay`.",
                "short",
                query(
                    total(f"sum({increase('parkstream_dead_letters_total', '1h')})"),
                    "dead letters",
                ),
                thresholds=[(None, "green"), (1, "red")],
            )
        )
        .with_panel(
            stat(
                "Consumer lag",
                "Records waiting in Kafka for the worker, all topics.",
                "short",
                query(
                    total("sum(max by (topic, partition) (parkstream_consumer_lag))"),
                    "lag",
                ),
                thresholds=[(None, "green"), (1000, "yellow"), (10000, "red")],
            )
        )
    )


def _throughput(d: Dashboard) -> Dashboard:
    return (
        d.with_row(Row("Throughput"))
        .with_panel(
            timeseries(
                "Gateway answers / s",
                "Vendor requests by outcome: accepted (in Kafka), rejected (an ErrorCode, "
                "nothing published), unavailable (503: the broker could not take it).",
                "reqps",
                query(by("outcome", rate("parkstream_gateway_requests_total")), "{{outcome}}"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            timeseries(
                "Events / s by topic",
                "Records the worker read and wrote, per topic.",
                "ops",
                query(by("topic", rate("parkstream_events_consumed_total")), "consumed {{topic}}"),
                query(by("topic", rate("parkstream_events_produced_total")), "produced {{topic}}"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            timeseries(
                "Controller calls / s",
                "Calls to the Controller by outcome: applied, rejected (an ErrorCode), "
                "transient (retried).",
                "reqps",
                query(by("outcome", rate("parkstream_controller_calls_total")), "{{outcome}}"),
                width=WIDTH_THIRD,
            )
        )
    )


def _latency(d: Dashboard) -> Dashboard:
    return (
        d.with_row(Row("Latency"))
        .with_panel(
            timeseries(
                "End-to-end latency",
                "From the gateway accepting a permit to the Controller applying it.",
                "s",
                query(quantile(0.5, "parkstream_end_to_end_seconds"), "p50"),
                query(quantile(0.95, "parkstream_end_to_end_seconds"), "p95"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            timeseries(
                "Controller call latency",
                "One Controller call, request sent to answer read.",
                "s",
                query(quantile(0.5, "parkstream_controller_call_duration_seconds"), "p50"),
                query(quantile(0.95, "parkstream_controller_call_duration_seconds"), "p95"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            timeseries(
                "Gateway answer latency",
                "Request received to answer sent, the broker's acknowledgement included.",
                "s",
                query(quantile(0.5, "parkstream_gateway_request_duration_seconds"), "p50"),
                query(quantile(0.95, "parkstream_gateway_request_duration_seconds"), "p95"),
                width=WIDTH_THIRD,
            )
        )
    )


def _errors(d: Dashboard) -> Dashboard:
    return (
        d.with_row(Row("Errors"))
        .with_panel(
            timeseries(
                "Controller error codes / s",
                "Controller rejections by ErrorCode (9000-9034); each one is dead-lettered.",
                "reqps",
                query(
                    by(
                        "error_code",
                        rate('parkstream_controller_calls_total{outcome="rejected"}'),
                    ),
                    "{{error_code}}",
                ),
                width=WIDTH_THIRD,
                stacked=True,
            )
        )
        .with_panel(
            timeseries(
                "Gateway rejections / s by error code",
                "Vendor requests answered with a Controller ErrorCode at the edge.",
                "reqps",
                query(
                    by(
                        "error_code",
                        rate('parkstream_gateway_requests_total{outcome="rejected"}'),
                    ),
                    "{{error_code}}",
                ),
                width=WIDTH_THIRD,
                stacked=True,
            )
        )
        .with_panel(
            timeseries(
                "Controller retries / s",
                "Calls retried after a timeout, connection error, 5xx or 429.",
                "reqps",
                query(by("endpoint", rate("parkstream_controller_retries_total")), "{{endpoint}}"),
                width=WIDTH_THIRD,
            )
        )
        .with_panel(
            timeseries(
                "Dead letters by reason and code",
                "Records sent to parkstream.dlq.v1 per 5 minutes.",
                "short",
                query(
                    by("reason, error_code", increase("parkstream_dead_letters_total", "5m")),
                    "{{reason}} {{error_code}}",
                ),
                width=WIDTH_HALF,
                stacked=True,
            )
        )
        .with_panel(
            timeseries(
                "Journal reconciliations and sessions in doubt",
                "Redelivered commands settled from the journal, per hour, by outcome; "
                "in doubt means the Controller reference id is unknown and needs a person.",
                "short",
                query(
                    by("outcome", "increase(parkstream_journal_reconciled_total[1h])"),
                    "{{outcome}}",
                ),
                query(
                    total("sum(increase(parkstream_sessions_in_doubt_total[1h]))"),
                    "sessions in doubt",
                ),
                width=WIDTH_HALF,
            )
        )
    )


def _flow(d: Dashboard) -> Dashboard:
    return (
        d.with_row(Row("Kafka and the Controller"))
        .with_panel(
            timeseries(
                "Consumer lag by topic",
                "Records waiting in Kafka for the worker. Grows while the circuit is open.",
                "short",
                query(
                    by("topic", "max by (topic, partition) (parkstream_consumer_lag)"),
                    "{{topic}}",
                ),
                width=WIDTH_QUARTER * 2,
            )
        )
        .with_panel(
            timeseries(
                "Controller circuit state",
                "0 closed, 1 half-open, 2 open (calls paused).",
                "none",
                query(total("max(parkstream_circuit_state)"), "circuit"),
                width=WIDTH_QUARTER,
            )
        )
        .with_panel(
            timeseries(
                "Controller calls in flight",
                "Calls waiting for the Controller's answer, all workers.",
                "short",
                query(total("sum(parkstream_controller_in_flight)"), "in flight"),
                width=WIDTH_QUARTER,
            )
        )
        .with_panel(
            timeseries(
                "Duplicates dropped / s",
                "Events dropped as duplicates before planning (vendors retrying a push).",
                "ops",
                query(by("topic", rate("parkstream_dedupe_dropped_total")), "{{topic}}"),
                width=WIDTH_HALF,
            )
        )
        .with_panel(
            timeseries(
                "Sandbox answers / s",
                "Only with the sandbox Controller (demos): its answers by HTTP status.",
                "reqps",
                query(by("status", rate("parkstream_sandbox_requests_total")), "{{status}}"),
                width=WIDTH_HALF,
            )
        )
    )


def build() -> Dashboard:
    """The overview dashboard, rows top to bottom in the order an operator asks."""
    d = (
        Dashboard(TITLE)
        .uid(UID)
        .description("Is every permit reaching the OPS-COM Controller, and if not, where is it?")
        .tags(["parkstream"])
        .refresh("30s")
        .time("now-6h", "now")
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
    )
    for section in (_headline, _throughput, _latency, _errors, _flow):
        d = section(d)
    return d
