"""The few panel and query shapes the parkstream dashboards are made of.

Every query is plain PromQL with fixed windows (no Grafana-only ``$__`` variables), so each
expression can be checked against a real Prometheus, and each returns a series before the
first event: ``sum(...) or vector(0)``, or ``sum by (l) (...) or on() vector(0)`` (see
docs/metrics.md, "Queries that always answer").
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import stat as stat_builders
from grafana_foundation_sdk.builders import timeseries as timeseries_builders
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)

# Panels read from the dashboard's data source variable (see ``datasource_variable``).
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE_WINDOW = "5m"

WIDTH_FULL = 24
WIDTH_HALF = 12
WIDTH_THIRD = 8
WIDTH_QUARTER = 6
HEIGHT = 8
HEIGHT_STAT = 4


def total(expr: str) -> str:
    """An aggregate without labels that answers ``0`` when nothing matched yet."""
    return f"{expr} or vector(0)"


def by(labels: str, expr: str) -> str:
    """``sum by (labels) (expr)`` that answers one ``0`` series when no labelled series exists.

    ``on()`` matters: a plain ``or vector(0)`` would add a stray ``0`` series beside real ones.
    """
    return f"sum by ({labels}) ({expr}) or on() vector(0)"


def rate(selector: str, window: str = RATE_WINDOW) -> str:
    """Per-second rate of a counter selector over ``window``."""
    return f"rate({selector}[{window}])"


def increase(metric: str, window: str) -> str:
    """How much a counter grew within ``window``, a series born inside the window included.

    A labelled series appears at its first increment, already at 1, and ``increase()`` needs
    two samples: alone it would miss the first dead letter of a reason or the first permit of a
    zone. A series absent ``window`` ago counts its whole value instead.
    """
    return (
        f"(increase({metric}[{window}]) and {metric} offset {window})"
        f" or ({metric} unless {metric} offset {window})"
    )


def quantile(q: float, histogram: str, window: str = RATE_WINDOW) -> str:
    """The ``q`` quantile of a histogram over ``window``; ``0`` while nothing was observed.

    With no observations ``histogram_quantile`` yields NaN; ``>= 0`` drops it so the fallback
    applies.
    """
    inner = f"sum by (le) (rate({histogram}_bucket[{window}]))"
    return f"(histogram_quantile({q}, {inner}) >= 0) or vector(0)"


def query(expr: str, legend: str) -> Dataquery:
    """A range query with its legend; the panel gives it its ref id."""
    return Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)


def timeseries(
    title: str,
    description: str,
    unit: str,
    *queries: Dataquery,
    width: int = WIDTH_HALF,
    stacked: bool = False,
) -> timeseries_builders.Panel:
    """A time series panel: one line per series, legend as a table with last and max."""
    panel = (
        timeseries_builders.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .height(HEIGHT)
        .span(width)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for ref, q in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(q.ref_id(ref))
    return panel


def stat(
    title: str,
    description: str,
    unit: str,
    q: Dataquery,
    *,
    width: int = WIDTH_QUARTER,
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: dict[str, tuple[str, str]] | None = None,
) -> stat_builders.Panel:
    """A single big number (the last value), coloured by thresholds."""
    steps = thresholds or [(None, "green")]
    panel = (
        stat_builders.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(HEIGHT_STAT)
        .span(width)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .text_mode(common.BigValueTextMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(
            ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=value, color=color) for value, color in steps])
        )
        .with_target(q.ref_id("A"))
    )
    if mappings:
        panel = panel.mappings(
            [
                ValueMap(
                    options={
                        value: ValueMappingResult(text=text, color=color, index=index)
                        for index, (value, (text, color)) in enumerate(mappings.items())
                    }
                )
            ]
        )
    return panel
