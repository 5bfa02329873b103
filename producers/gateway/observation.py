"""Request observation: every vendor request counted, timed and, when refused, logged, the
same way for every route, by one aiohttp middleware (``observe_requests``).

A route is observed once ``observe`` has registered it; other routes (``/healthz``,
``/openapi.json``, an unknown path) pass through uncounted. A handler names the vendor it
authenticated with ``name_vendor`` (until then the request counts for ``vendor="unknown"``)
and leaves early by raising ``Outcome``; a ``ContractError`` becomes the Controller's error
answer, counted as ``rejected`` and logged. Any other exception is counted as ``error`` and
left to aiohttp (500).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Counter, Histogram

from producers.gateway.answers import error_response
from schemas.controller import ContractError, Endpoint

log = logging.getLogger(__package__)

REQUESTS = Counter(
    "parkstream_gateway_requests_total",
    "Vendor requests answered by the gateway.",
    ["endpoint", "vendor", "outcome", "error_code"],
)
LATENCY = Histogram(
    "parkstream_gateway_request_duration_seconds",
    "Time from request received to answer sent, broker acknowledgement included.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

UNKNOWN_VENDOR = "unknown"


class Outcome(Exception):
    """A finished answer with its metrics labels (raised to leave a handler early)."""

    def __init__(self, response: web.Response, outcome: str, error_code: str = "") -> None:
        super().__init__(outcome)
        self.response = response
        self.outcome = outcome
        self.error_code = error_code


@dataclass(frozen=True)
class Observed:
    """How one route is observed."""

    endpoint: str  # the metrics label
    answered: str  # the outcome of the handler's own answer
    contract: Endpoint | None  # whose envelope a ContractError is answered in (None: plain)


_RESOURCES = web.AppKey("observed_resources", dict[web.AbstractResource, Observed])
# The vendor the handler of the request being observed has named. aiohttp runs a handler in
# its middleware's task, so the middleware reads what the handler set (and resets it after).
_vendor: ContextVar[str] = ContextVar("gateway_vendor", default=UNKNOWN_VENDOR)


def observe(
    app: web.Application,
    route: web.AbstractRoute,
    endpoint: str,
    answered: str,
    contract: Endpoint | None = None,
) -> None:
    """Count, time and log the requests of ``route``'s path as ``endpoint`` (``Observed``):
    of every method it has, as the HEAD route that comes with a GET one."""
    assert route.resource is not None
    resources = app.get(_RESOURCES)
    if resources is None:
        resources = app[_RESOURCES] = {}
    resources[route.resource] = Observed(endpoint, answered, contract)


def name_vendor(vendor: str) -> None:
    """Count the request being handled for ``vendor``, the vendor its handler authenticated."""
    _vendor.set(vendor)


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run an observed route's handler and count its outcome; errors become their documented
    answers."""
    resource = request.match_info.route.resource
    observed = request.app.get(_RESOURCES, {}).get(resource) if resource else None
    if observed is None:
        return await handler(request)
    started = time.perf_counter()
    outcome, code = "error", ""
    named = _vendor.set(UNKNOWN_VENDOR)
    try:
        response = await handler(request)
        outcome = observed.answered
        return response
    except Outcome as done:
        outcome, code = done.outcome, done.error_code
        return done.response
    except ContractError as err:
        outcome, code = "rejected", str(err.code)
        log.info(
            'request rejected endpoint="%s" vendor="%s" error_code=%d field="%s" reason="%s"',
            observed.endpoint,
            _vendor.get(),
            err.code,
            err.field or "",
            err.detail or "",
        )
        return error_response(err, contract=observed.contract)
    finally:
        REQUESTS.labels(observed.endpoint, _vendor.get(), outcome, code).inc()
        LATENCY.labels(observed.endpoint).observe(time.perf_counter() - started)
        _vendor.reset(named)
