"""The gateway's own answers: the Controller's error envelope, ``503`` with ``Retry-After``
when nothing could be accepted, and the answer to a path that is no endpoint."""

from __future__ import annotations

from aiohttp import web

from schemas.controller import ContractError, Endpoint, resolve_path

RETRY_AFTER_SECONDS = 5


def error_response(
    err: ContractError, status: int | None = None, contract: Endpoint | None = None
) -> web.Response:
    """The Controller's error answer for ``err`` (its documented HTTP status by default),
    in ``contract``'s envelope (validate/plate has its own)."""
    body = contract.error_body(err) if contract is not None else err.body()
    return web.json_response(body, status=status or err.http_status)


def unavailable_response(message: str, retry_after: int = RETRY_AFTER_SECONDS) -> web.Response:
    """``503`` with ``Retry-After``: nothing was accepted, the vendor should retry."""
    return web.json_response(
        {"status": "error", "message": message},
        status=503,
        headers={"Retry-After": str(retry_after)},
    )


async def unknown_path(request: web.Request) -> web.Response:
    """Documented endpoints without their client code get 9000; anything else 404."""
    try:
        resolve_path(request.path)
    except ContractError as err:
        return error_response(err)
    except LookupError:
        pass
    return web.json_response({"status": "error", "message": "Not found."}, status=404)
