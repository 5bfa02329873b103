"""Delivery status, a parkstream extension: what became of a permit, asked of the worker
(``GET {PARKSTREAM_WORKER_URL}/sessions/{reference_id}``) for the vendor the reference id
was issued to, and told in the vendor's terms (``delivery_status``)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web

from foundation.settings import Settings
from producers.gateway.answers import unavailable_response
from producers.gateway.auth import Authenticator
from producers.gateway.observation import Outcome, name_vendor, observe
from producers.openapi import STATUS_STATES
from producers.references import ReferenceIssuer
from schemas.controller import ERROR_MESSAGES, ContractError
from schemas.status import SessionState

log = logging.getLogger(__package__)

STATUS_ENDPOINT = "permits/status"  # the metrics label of the delivery-status route
WORKER_TIMEOUT = aiohttp.ClientTimeout(total=5.0, connect=2.0)


class PermitStatus:
    """The delivery-status handler and its session to the worker."""

    def __init__(
        self, settings: Settings, auth: Authenticator, references: ReferenceIssuer
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.references = references
        self.http: aiohttp.ClientSession | None = None  # to the worker

    def add_routes(self, app: web.Application) -> None:
        route = app.router.add_get("/api/{client}/v1/permits/{reference_id}", self.handle)
        observe(app, route, STATUS_ENDPOINT, answered="answered")

    async def handle(self, request: web.Request) -> web.Response:
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
