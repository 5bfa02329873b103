"""Prometheus metrics of the sandbox. Labels are bounded: endpoint names, HTTP status,
documented error codes and fault kinds, never a plate or a vendor string."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "parkstream_sandbox_requests_total",
    "Controller API calls answered by the sandbox.",
    ["endpoint", "status", "error_code"],
)
REQUEST_DURATION = Histogram(
    "parkstream_sandbox_request_duration_seconds",
    "Time from request to answer, injected latency included.",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FAULTS = Counter(
    "parkstream_sandbox_faults_injected_total",
    "Faults injected into Controller API calls.",
    ["endpoint", "fault"],
)
