"""The push endpoints: a request the Controller would take becomes an event on its topic
(``producers.events``), answered as the Controller answers it once the broker acknowledged
the event."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from foundation.kafka import BrokerUnavailable
from foundation.settings import Settings
from producers.events import PUSH_ENDPOINTS, accept
from producers.gateway.answers import unavailable_response
from producers.gateway.auth import Authenticator
from producers.gateway.body import read_body
from producers.gateway.observation import Outcome, name_vendor, observe
from producers.gateway.producer import EventPublisher
from producers.references import IDEMPOTENCY_KEY_HEADER, ReferenceIssuer, check_idempotency_key
from schemas.avro import RegistryUnavailable
from schemas.controller import ENDPOINTS

log = logging.getLogger(__package__)


class Pushes:
    """The handlers of ``PUSH_ENDPOINTS``."""

    def __init__(
        self,
        settings: Settings,
        auth: Authenticator,
        publisher: EventPublisher,
        references: ReferenceIssuer,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.publisher = publisher
        self.references = references

    def add_routes(self, app: web.Application) -> None:
        for endpoint in PUSH_ENDPOINTS:
            route = app.router.add_post(f"/api/{{client}}/v1/{endpoint}", self.handler(endpoint))
            observe(app, route, endpoint, answered="accepted")

    def handler(self, endpoint: str) -> Callable[[web.Request], Awaitable[web.Response]]:
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
