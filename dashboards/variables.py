"""Dashboard variables shared by the parkstream dashboards."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import DatasourceVariable


def datasource_variable() -> DatasourceVariable:
    """``$datasource``: any Prometheus data source; every panel reads from it."""
    return DatasourceVariable("datasource").label("Data source").type("prometheus")
