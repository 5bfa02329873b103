"""The OPS-COM-compatible HTTP gateway: vendors change only their base URL.

``POST /api/{client}/v1/permits/push`` is answered exactly as the Controller
answers it (same success body, same ``{"ErrorCode", "ErrorMessage"}`` errors from
``schemas.controller``), but instead of calling the Controller the gateway
publishes a ``ParkingSessionEvent`` to Kafka and answers only once the broker
has acknowledged it (acks=all, idempotent producer). The vendor's ``apiToken``
identifies the vendor and is then dropped: it never enters Kafka or a log.

When the broker cannot take the record the answer is ``503`` with
``Retry-After``: nothing is claimed as accepted, so the vendor retries.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram

from parkstream.kafka import AsyncProducer, BrokerUnavailable, ensure_topics
from parkstream.settings import Settings
from parkstream.web import add_ops_routes, run_app
from producers.events import new_reference_id, session_event
from schemas.avro import codec
from schemas.controller import ENDPOINTS, ContractError

log = logging.getLogger(__name__)

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

RETRY_AFTER_SECONDS = 5
UNKNOWN_VENDOR = "unknown"

SETTINGS_KEY = web.AppKey("settings", Settings)
PRODUCER_KEY = web.AppKey("producer", AsyncProducer)


class VendorDirectory:
    """Vendor tokens -> vendor names, compared in constant time."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = [(name, token.encode()) for name, token in tokens.items()]

    def vendor_for(self, token: str) -> str | None:
        """The vendor whose token this is, or ``None``. Every token is compared."""
        presented = token.encode()
        found = None
        for name, expected in self._tokens:
            if hmac.compare_digest(presented, expected):
                found = name
        return found


def authenticate(
    body: object, client: str, settings: Settings, vendors: VendorDirectory
) -> tuple[str, dict[str, Any]]:
    """``(vendor, body)`` for a request the Controller would let through, else ``ContractError``.

    Checked in the Controller's order: a JSON object (9003), a token (9001), a
    known token (9002), the client code this deployment serves (9034).
    """
    if not isinstance(body, dict):
        raise ContractError(9003)
    token = body.get("apiToken")
    if token is None or token == "":
        raise ContractError(9001)
    vendor = vendors.vendor_for(token) if isinstance(token, str) else None
    if vendor is None:
        raise ContractError(9002)
    if client != settings.controller_client:
        raise ContractError(9034)
    return vendor, body


def _error_response(err: ContractError) -> web.Response:
    return web.json_response(err.body(), status=err.http_status)


async def _read_json(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ContractError(9003) from None


async def push_permit(request: web.Request) -> web.Response:
    """``permits/push``: answer with a fresh reference id once Kafka has the event."""
    settings = request.app[SETTINGS_KEY]
    started = time.perf_counter()
    endpoint = "permits/push"
    vendor = UNKNOWN_VENDOR
    try:
        body = await _read_json(request)
        vendor, body = authenticate(body, request.match_info["client"], settings, _vendors(request))
        fields = ENDPOINTS[endpoint].validate(body, lenient_times=True)
        session_id = new_reference_id()
        record = session_event(
            "CREATE",
            session_id,
            vendor,
            fields,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        value = codec().encode("ParkingSessionEvent", record)
        await request.app[PRODUCER_KEY].send(
            settings.topic("sessions"), value, key=session_id.encode()
        )
    except ContractError as err:
        REQUESTS.labels(endpoint, vendor, "rejected", str(err.code)).inc()
        log.info(
            'request rejected endpoint="%s" vendor="%s" error_code=%d', endpoint, vendor, err.code
        )
        return _error_response(err)
    except BrokerUnavailable as exc:
        REQUESTS.labels(endpoint, vendor, "unavailable", "").inc()
        log.warning(
            'broker unavailable endpoint="%s" vendor="%s" reason="%s"', endpoint, vendor, exc
        )
        return web.json_response(
            {"status": "error", "message": "Service temporarily unavailable; retry later."},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    finally:
        LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    REQUESTS.labels(endpoint, vendor, "accepted", "").inc()
    log.info('permit accepted vendor="%s" reference_id="%s"', vendor, session_id)
    return web.json_response(
        {"status": "success", "reference_id": session_id, "InternalReferenceID": session_id}
    )


_VENDORS_KEY = web.AppKey("vendors", VendorDirectory)


def _vendors(request: web.Request) -> VendorDirectory:
    return request.app[_VENDORS_KEY]


def create_app(settings: Settings, producer: AsyncProducer) -> web.Application:
    """The gateway's aiohttp application; the caller owns the producer's lifecycle."""
    app = web.Application(client_max_size=64 * 1024)
    app[SETTINGS_KEY] = settings
    app[PRODUCER_KEY] = producer
    app[_VENDORS_KEY] = VendorDirectory(settings.vendor_tokens)
    app.router.add_post("/api/{client}/v1/permits/push", push_permit)

    async def ready() -> str | None:
        try:
            await asyncio.to_thread(producer.list_topics, 2.0)
        except BrokerUnavailable as exc:
            return f"broker unreachable: {exc}"
        return None

    add_ops_routes(app, ready)
    return app


async def serve(settings: Settings) -> None:
    """Run the gateway until cancelled (``parkstream gateway``)."""
    await asyncio.to_thread(ensure_topics, settings)
    with AsyncProducer(settings.kafka_bootstrap_servers) as producer:
        app = create_app(settings, producer)
        log.info(
            'gateway listening url="http://%s:%d" client="%s" vendors=%d',
            settings.gateway_host,
            settings.gateway_port,
            settings.controller_client,
            len(settings.vendor_tokens),
        )
        await run_app(app, settings.gateway_host, settings.gateway_port)
