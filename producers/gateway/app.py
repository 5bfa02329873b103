"""The OPS-COM-compatible HTTP gateway: vendors change only their base URL.

Routes (all under the one client code this deployment serves)::

    POST /api/{client}/v1/permits/push|update|delete     -> ParkingSessionEvent (sessions.v1)
    POST /api/{client}/v1/vehicles/push                  -> VehicleEvent        (vehicles.v1)
    POST /api/{client}/v1/profiles/push                  -> UserEvent           (users.v1)
    POST /api/{client}/v1/permits/stats                  \\
    POST /api/{client}/v1/profiles/types/list             |  passed through to the Controller
    POST /api/{client}/v1/violations/send_overdue_to_collections  |  with parkstream's own token,
    POST /api/v1/validate/plate                          /   for vendors granted the endpoint
    GET  /api/{client}/v1/permits/{reference_id}         delivery status (parkstream extension)
    GET  /openapi.json                                   OpenAPI 3 document of all of the above
    GET  /healthz                                        liveness

``/readyz`` and ``/metrics`` (which name every vendor and its volumes) are served on the
operations port ``PARKSTREAM_GATEWAY_OPS_PORT`` only (``create_ops_app``), never here.

A push is validated with the Controller contract (``schemas.controller``) and
answered exactly as the Controller answers it: the documented success body, or
``{"ErrorCode", "ErrorMessage"}`` with the contract's HTTP status. The success
answer is sent only after the broker acknowledged the event (acks=all,
idempotent producer). When the broker cannot take it the answer is ``503`` with
``Retry-After`` and nothing is claimed as accepted; after such a failure the
gateway re-creates missing topics before its next send (a broker that came back
empty). Bodies over ``PARKSTREAM_GATEWAY_MAX_BODY_BYTES`` get ``413``; a request whose
headers and body do not arrive within ``PARKSTREAM_GATEWAY_READ_TIMEOUT_SECONDS`` gets ``408``
and its connection is closed (``parkstream.web``).

Every vendor may push and ask about its own permits; a pass-through endpoint only when the
operator granted it to that vendor (``PARKSTREAM_VENDOR_GRANTS``, ``VendorGrants``): those
calls act with parkstream's token, and violations/send_overdue_to_collections changes the
Controller's state. An ungranted call gets 9002 and never reaches the Controller.

The vendor's token identifies the vendor and is then dropped: it never enters
Kafka, a log line or an error message. See docs/gateway.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from parkstream.controller import ControllerClient
from parkstream.errors import SchemaViolation, TransientError
from parkstream.kafka import AsyncProducer, BrokerUnavailable, ensure_topics
from parkstream.settings import Settings
from parkstream.web import (
    add_health_route,
    add_ops_routes,
    bounded_reads,
    run_apps,
)
from producers.events import PUSH_ENDPOINTS, accept
from producers.gateway.answers import RETRY_AFTER_SECONDS, unavailable_response, unknown_path
from producers.gateway.auth import Authenticator
from producers.gateway.body import read_body
from producers.gateway.observation import Outcome, name_vendor, observe, observe_requests
from producers.gateway.producer import DELIVERY_TIMEOUT_MS, EventPublisher
from producers.openapi import PASS_THROUGH_ENDPOINTS, STATUS_STATES, openapi_document
from producers.references import IDEMPOTENCY_KEY_HEADER, ReferenceIssuer, check_idempotency_key
from schemas.avro import AvroCodec, RegistryUnavailable
from schemas.controller import (
    ENDPOINTS,
    ERROR_MESSAGES,
    ContractError,
    Endpoint,
)
from schemas.status import SessionState

log = logging.getLogger(__package__)  # "producers.gateway", as in every log line so far

STATUS_ENDPOINT = "permits/status"  # the metrics label of the delivery-status route
WORKER_TIMEOUT = aiohttp.ClientTimeout(total=5.0, connect=2.0)
PASS_THROUGH_CONNECTIONS = 16  # pooled connections to the Controller for pass-through calls


class Gateway:
    """The gateway's state and handlers; one per aiohttp application."""

    def __init__(
        self,
        settings: Settings,
        producer: AsyncProducer | None = None,
        avro: AvroCodec | None = None,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    ) -> None:
        self.settings = settings
        # First: a bad grant stops the start before a producer exists.
        self.auth = Authenticator(settings)
        self.publisher = EventPublisher(settings, producer, avro, delivery_timeout_ms)
        self.references = ReferenceIssuer(settings.reference_secret)
        self.http: aiohttp.ClientSession | None = None  # to the worker (delivery status)
        self._controller: ControllerClient | None = None  # for pass-through calls

    def controller(self) -> ControllerClient:
        """The pass-through calls' Controller client (parkstream's token; made on first use)."""
        if self._controller is None:
            self._controller = ControllerClient.from_settings(
                self.settings, max_connections=PASS_THROUGH_CONNECTIONS
            )
        return self._controller

    async def close(self) -> None:
        """Close the Controller client; stop the gateway's own producer."""
        if self._controller is not None:
            await self._controller.aclose()
        await self.publisher.close()

    # ----------------------------------------------------------------- handlers

    def push_handler(self, endpoint: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        contract = ENDPOINTS[endpoint]

        async def handle(request: web.Request) -> web.Response:
            body = await read_body(request, contract, self.settings.gateway_max_body_bytes)
            vendor = self.auth.authenticate(contract, body, request.match_info["client"])
            name_vendor(vendor)
            key = check_idempotency_key(request.headers.get(IDEMPOTENCY_KEY_HEADER))
            accepted = accept(endpoint, body, vendor, self.references, idempotency_key=key)
            try:
                await self.publisher.publish(accepted)
            except (BrokerUnavailable, RegistryUnavailable) as exc:
                log.warning(
                    'event not accepted, answering 503 endpoint="%s" vendor="%s" reason="%s"',
                    endpoint,
                    vendor,
                    exc,
                )
                raise Outcome(
                    unavailable_response("Service temporarily unavailable; retry later."),
                    "unavailable",
                ) from None
            log.info(
                'request accepted endpoint="%s" vendor="%s" reference_id="%s" event_id="%s"',
                endpoint,
                vendor,
                accepted.reference_id,
                accepted.record["event_id"],
            )
            return web.json_response(accepted.answer)

        return handle

    def pass_through_handler(
        self, endpoint: str
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        contract = ENDPOINTS[endpoint]

        async def handle(request: web.Request) -> web.Response:
            body = await read_body(request, contract, self.settings.gateway_max_body_bytes)
            vendor = self.auth.authenticate(contract, body, request.match_info.get("client"))
            name_vendor(vendor)
            if not self.auth.grants.allows(vendor, endpoint):
                # Before the fields: an ungranted vendor learns nothing of the endpoint.
                raise ContractError(9002, detail="endpoint not granted to this vendor")
            fields = contract.validate(body)
            return await self._call_controller(contract, fields, vendor)

        return handle

    async def _call_controller(
        self, contract: Endpoint, fields: dict[str, Any], vendor: str
    ) -> web.Response:
        """Forward a read request with parkstream's own token; relay the Controller's answer."""
        settings = self.settings
        if not settings.controller_api_token:
            log.error(
                'cannot pass through endpoint="%s": PARKSTREAM_CONTROLLER_API_TOKEN is not set',
                contract.name,
            )
            raise Outcome(unavailable_response("The Controller is not reachable."), "unavailable")
        try:
            answer = await self.controller().relay(contract.name, fields)
        except SchemaViolation as exc:  # fields the contract validated: not expected
            raise ContractError(exc.error_code or 9003, detail=str(exc)) from None
        except TransientError as exc:
            log.warning(
                'controller unreachable endpoint="%s" vendor="%s" error="%s"',
                contract.name,
                vendor,
                type(exc).__name__,
            )
            raise Outcome(
                unavailable_response("The Controller is not reachable."), "unavailable"
            ) from None
        status, retry_after = answer.status_code, answer.retry_after
        if status >= 500 or status == 429:
            log.warning(
                'controller unavailable endpoint="%s" vendor="%s" status=%d',
                contract.name,
                vendor,
                status,
            )
            seconds = (
                int(retry_after) if retry_after and retry_after.isdigit() else RETRY_AFTER_SECONDS
            )
            raise Outcome(
                unavailable_response("The Controller is not available.", seconds), "unavailable"
            )
        if status in (401, 403) and b"ErrorCode" in answer.body:
            log.warning(
                'controller refused parkstream\'s token endpoint="%s" status=%d',
                contract.name,
                status,
            )
        # The client masked the token wherever the Controller echoed it.
        return web.Response(body=answer.body, status=status, content_type="application/json")

    async def permit_status(self, request: web.Request) -> web.Response:
        """``GET /api/{client}/v1/permits/{reference_id}``: what became of a permit."""
        vendor = self.auth.bearer_vendor(request)
        name_vendor(vendor)
        self.auth.check_client(request.match_info["client"])
        reference_id = request.match_info["reference_id"]
        if not self.references.verify(reference_id, vendor):
            raise ContractError(9009, detail="not a reference id issued to this vendor")
        state = await self._worker_state(reference_id, vendor)
        return web.json_response(state)

    async def _worker_state(self, reference_id: str, vendor: str) -> dict[str, Any]:
        url = f"{self.settings.worker_url}/sessions/{reference_id}"
        assert self.http is not None
        try:
            async with self.http.get(url, timeout=WORKER_TIMEOUT) as answer:
                status = answer.status
                payload = await answer.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                'worker unreachable reference_id="%s" vendor="%s" error="%s"',
                reference_id,
                vendor,
                type(exc).__name__,
            )
            raise Outcome(
                unavailable_response("Delivery status is not available."), "unavailable"
            ) from None
        if status == 404:
            # The HMAC proves the gateway issued it; the worker has not recorded it yet.
            return {"reference_id": reference_id, "state": SessionState.ACCEPTED}
        if status != 200 or not isinstance(payload, dict):
            log.warning('worker answered status=%d reference_id="%s"', status, reference_id)
            raise Outcome(unavailable_response("Delivery status is not available."), "unavailable")
        return delivery_status(reference_id, payload)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(self.settings.controller_client))


def delivery_status(reference_id: str, worker: dict[str, Any]) -> dict[str, Any]:
    """The vendor's view of the worker's session record (only the documented keys).

    Unknown worker states read as ``accepted``: accepted is all the gateway can promise.
    A dead-lettered permit carries its documented code and that code's documented
    message, never the Controller's own text (both ``None`` without a documented code).
    """
    raw = worker.get("state")
    state = SessionState(raw) if raw in STATUS_STATES else SessionState.ACCEPTED
    out: dict[str, Any] = {"reference_id": reference_id, "state": state}
    if state != SessionState.ACCEPTED and worker.get("at"):
        out["at"] = str(worker["at"])
    if state == SessionState.DELIVERED and worker.get("controller_reference_id"):
        out["controller_reference_id"] = str(worker["controller_reference_id"])
    if state == SessionState.DEAD_LETTERED:
        code = worker.get("error_code")
        known = isinstance(code, int) and not isinstance(code, bool) and code in ERROR_MESSAGES
        documented: int | None = code if known else None
        out["error_code"] = documented
        out["error_message"] = None if documented is None else ERROR_MESSAGES[documented]
    return out


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def create_app(
    settings: Settings,
    producer: AsyncProducer | None = None,
    *,
    delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
) -> web.Application:
    """The gateway's aiohttp application.

    With ``producer`` given the caller owns its lifecycle; without, the gateway makes
    its own (replacing it if it dies) and closes it when the application stops.
    """
    gateway = Gateway(settings, producer, delivery_timeout_ms=delivery_timeout_ms)
    app = web.Application(
        client_max_size=settings.gateway_max_body_bytes,
        middlewares=[bounded_reads, observe_requests],
    )
    app[GATEWAY_KEY] = gateway

    async def http_session(app: web.Application) -> Any:
        gateway.http = aiohttp.ClientSession()
        yield
        await gateway.http.close()
        await gateway.close()

    app.cleanup_ctx.append(http_session)
    for endpoint in PUSH_ENDPOINTS:
        route = app.router.add_post(
            f"/api/{{client}}/v1/{endpoint}", gateway.push_handler(endpoint)
        )
        observe(app, route, endpoint, answered="accepted")
    for endpoint in PASS_THROUGH_ENDPOINTS:
        contract = ENDPOINTS[endpoint]
        path = f"/api/{{client}}/v1/{endpoint}" if contract.client_in_path else contract.path("")
        route = app.router.add_post(path, gateway.pass_through_handler(endpoint))
        observe(app, route, endpoint, answered="passed_through", contract=contract)
    route = app.router.add_get("/api/{client}/v1/permits/{reference_id}", gateway.permit_status)
    observe(app, route, STATUS_ENDPOINT, answered="answered")
    app.router.add_get("/openapi.json", gateway.openapi)
    add_health_route(app)
    app.router.add_post("/api/{tail:.*}", unknown_path)
    return app


def create_ops_app(gateway: Gateway) -> web.Application:
    """The operations port's application: ``/healthz``, ``/readyz`` (the broker answers the
    gateway's producer) and ``/metrics``; nothing a vendor calls."""
    app = web.Application(middlewares=[bounded_reads])

    async def ready() -> str | None:
        try:
            await asyncio.to_thread(gateway.publisher.producer.list_topics, 2.0)
        except BrokerUnavailable as exc:
            return f"broker unreachable: {exc}"
        return None

    add_ops_routes(app, ready)
    return app


async def serve(settings: Settings) -> None:
    """Run the gateway until cancelled (``parkstream gateway``)."""
    app = create_app(settings)  # a bad grant stops the start before anything else
    if settings.uses_dev_reference_secret:
        log.warning(
            "PARKSTREAM_REFERENCE_SECRET is not set: reference ids are signed with the public "
            "development secret and prove nothing; set a secret of your own in production"
        )
    await asyncio.to_thread(ensure_topics, settings)
    log.info(
        'gateway listening url="http://%s:%d" ops_url="http://%s:%d" client="%s" vendors=%d '
        'framing="%s" grants="%s"',
        settings.gateway_host,
        settings.gateway_port,
        settings.gateway_host,
        settings.gateway_ops_port,
        settings.controller_client,
        len(app[GATEWAY_KEY].auth.vendors.names),
        app[GATEWAY_KEY].publisher.codec.framing,
        app[GATEWAY_KEY].auth.grants,
    )
    await run_apps(
        (app, settings.gateway_host, settings.gateway_port),
        (create_ops_app(app[GATEWAY_KEY]), settings.gateway_host, settings.gateway_ops_port),
        read_timeout=settings.gateway_read_timeout,
    )
