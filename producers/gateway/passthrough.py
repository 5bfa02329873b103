"""The pass-through endpoints: a granted vendor's call relayed to the Controller with
parkstream's own token (``ControllerClient.relay``), and the Controller's answer relayed
back."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from foundation.controller import ControllerClient
from foundation.errors import SchemaViolation, TransientError
from foundation.settings import Settings
from producers.gateway.answers import RETRY_AFTER_SECONDS, unavailable_response
from producers.gateway.auth import Authenticator
from producers.gateway.body import read_body
from producers.gateway.observation import Outcome, name_vendor, observe
from producers.openapi import PASS_THROUGH_ENDPOINTS
from schemas.controller import ENDPOINTS, ContractError, Endpoint

log = logging.getLogger(__package__)

PASS_THROUGH_CONNECTIONS = 16  # pooled connections to the Controller for pass-through calls


class PassThrough:
    """The handlers of ``PASS_THROUGH_ENDPOINTS`` and their Controller client."""

    def __init__(self, settings: Settings, auth: Authenticator) -> None:
        self.settings = settings
        self.auth = auth
        self._controller: ControllerClient | None = None

    def add_routes(self, app: web.Application) -> None:
        for endpoint in PASS_THROUGH_ENDPOINTS:
            contract = ENDPOINTS[endpoint]
            path = (
                f"/api/{{client}}/v1/{endpoint}" if contract.client_in_path else contract.path("")
            )
            route = app.router.add_post(path, self.handler(endpoint))
            observe(app, route, endpoint, answered="passed_through", contract=contract)

    def handler(self, endpoint: str) -> Callable[[web.Request], Awaitable[web.Response]]:
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

    def controller(self) -> ControllerClient:
        """The pass-through calls' Controller client (parkstream's token; made on first use)."""
        if self._controller is None:
            self._controller = ControllerClient.from_settings(
                self.settings, max_connections=PASS_THROUGH_CONNECTIONS
            )
        return self._controller

    async def close(self) -> None:
        """Close the Controller client."""
        if self._controller is not None:
            await self._controller.aclose()
