"""A vendor's request body, read within the gateway's size and time bounds and parsed as the
Controller parses it."""

from __future__ import annotations

from aiohttp import web

from foundation.web import RequestReadTimeout, read_timeout_response
from producers.gateway.answers import error_response
from producers.gateway.observation import Outcome
from schemas.controller import ContractError, Endpoint, parse_body


async def read_body(request: web.Request, contract: Endpoint, limit: int) -> object:
    """The parsed JSON body; 413 past the size limit (``limit`` bytes), 9003 when it is not
    JSON, 408 when it does not arrive within the read bound."""
    too_large = Outcome(error_response(ContractError(9003), 413, contract), "too_large", "9003")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    except RequestReadTimeout as exc:
        raise Outcome(read_timeout_response(exc.seconds), "timed_out") from None
    return parse_body(raw, request.headers.get("Content-Type"))
