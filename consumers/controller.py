"""Async client for the OPS-COM Controller API.

One ``ControllerClient`` holds one pooled ``httpx.AsyncClient``. Callers pass
*canonical* fields (the keys of ``schemas.controller``); the client turns them
into the wire body with the contract, adds the API token itself, POSTs, and
either returns a ``ControllerReply`` or raises one of ``parkstream.errors``::

    success shape of the endpoint (2xx)           -> ControllerReply
    JSON body with an integer ErrorCode (any status) -> ControllerRejected
    429, or 503 with Retry-After                    -> ControllerRateLimited
    other 5xx                                       -> ControllerServerError
    timeout (connect/read/write/pool)               -> ControllerTimeout
    connection refused/reset, broken HTTP           -> ControllerConnectionError
    anything else                                   -> UnexpectedAnswer

``classify()`` is that table as a pure function, so it is tested without I/O.

Production transport: ``default_transport()``, httpx over aiohttp
(``httpx-aiohttp``). Measured in BENCHMARKS.md: httpx's own async transport
costs several times more CPU per call at 32 concurrent connections.

The token never leaves this module except in the request body: it is not in
log lines, ``repr()``, or exception messages (answers are redacted before they
are quoted).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from parkstream.errors import (
    ControllerConnectionError,
    ControllerRateLimited,
    ControllerRejected,
    ControllerServerError,
    ControllerTimeout,
    SchemaViolation,
    UnexpectedAnswer,
)
from schemas.controller import ENDPOINTS, ContractError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ControllerClient",
    "ControllerReply",
    "classify",
    "default_transport",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

#: Every phase bounded; read is the long one (violations exports can be large).
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)

# Short keep-alive: a Controller behind a proxy that closes idle connections
# first would make us POST on a dead socket (a transient error, but a wasted try).
_KEEPALIVE_EXPIRY_SECONDS = 5.0

# How much of an unexpected answer is quoted into the error (after redaction).
_SNIPPET_CHARS = 200

_REDACTED = "***"


@dataclass(frozen=True)
class ControllerReply:
    """A successful Controller answer.

    ``reference_id`` is the Controller's id for what was created or changed
    (``reference_id``, or ``vehicle_id_id`` for vehicles), always a ``str``;
    ``None`` for endpoints that return none (stats, lists, plate validation).
    """

    endpoint: str
    status_code: int
    body: dict[str, Any] = field(repr=False)
    reference_id: str | None
    elapsed_seconds: float


# --- classification (pure) -------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_status_success(body: dict[str, Any], id_key: str) -> bool:
    return body.get("status") == "success" and body.get(id_key) not in (None, "")


def _success_shape(endpoint: str, body: dict[str, Any]) -> bool:
    """Whether ``body`` is the documented success answer of ``endpoint``."""
    if endpoint in ("permits/push", "permits/update", "permits/delete", "profiles/push"):
        return _is_status_success(body, "reference_id")
    if endpoint == "vehicles/push":
        return _is_status_success(body, "vehicle_id_id")
    if endpoint == "profiles/types/list":
        return body.get("status") == "success" and isinstance(body.get("user_types"), list)
    if endpoint == "permits/stats":
        return isinstance(body.get("data"), list)
    if endpoint == "violations/send_overdue_to_collections":
        return isinstance(body.get("records"), list)
    if endpoint == "validate/plate":
        return (
            body.get("error") == 0 and _is_int(body["error"]) and isinstance(body.get("data"), dict)
        )
    raise ValueError(f"unknown Controller endpoint {endpoint!r}")


def _reference_id(body: dict[str, Any]) -> str | None:
    for key in ("reference_id", "vehicle_id_id"):
        value = body.get(key)
        if value is not None:
            return str(value)
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    ``None`` when absent or unparseable; never negative (a date in the past is 0).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _snippet(body_bytes: bytes, secrets: Iterable[str]) -> str:
    text = " ".join(body_bytes[: _SNIPPET_CHARS * 4].decode("utf-8", "replace").split())
    text = _redact(text, secrets)
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


def _json_object(body_bytes: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(body_bytes)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return body if isinstance(body, dict) else None


def classify(
    endpoint: str,
    status_code: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body_bytes: bytes,
    *,
    elapsed_seconds: float = 0.0,
    now: datetime | None = None,
    secrets: Iterable[str] = (),
) -> ControllerReply:
    """Turn one HTTP answer of ``endpoint`` into a reply, or raise its error.

    ``headers`` may be any mapping or pair list (looked up case-insensitively);
    ``now`` anchors HTTP-date ``Retry-After`` values; every string in
    ``secrets`` is masked in whatever this quotes from the answer.
    """
    secrets = tuple(secrets)
    body = _json_object(body_bytes)

    # A Controller ErrorCode is final whatever the HTTP status (the docs give none).
    if body is not None and _is_int(body.get("ErrorCode")):
        message = body.get("ErrorMessage")
        text = message if isinstance(message, str) else "(no ErrorMessage)"
        raise ControllerRejected(body["ErrorCode"], _redact(text, secrets))

    if status_code == 429 or status_code >= 500:
        retry_after = parse_retry_after(httpx.Headers(headers).get("retry-after"), now=now)
        if status_code == 429 or (status_code == 503 and retry_after is not None):
            raise ControllerRateLimited(status_code, retry_after)
        raise ControllerServerError(status_code)

    if body is None:
        raise UnexpectedAnswer(
            f"{endpoint}: HTTP {status_code} answer is not a JSON object: "
            f"{_snippet(body_bytes, secrets)!r}",
            status_code=status_code,
        )
    if 200 <= status_code < 300 and _success_shape(endpoint, body):
        return ControllerReply(
            endpoint=endpoint,
            status_code=status_code,
            body=body,
            reference_id=_reference_id(body),
            elapsed_seconds=elapsed_seconds,
        )
    # Plate validation reports failures as {"error": N, "message": "..."}.
    if endpoint == "validate/plate" and _is_int(body.get("error")) and body["error"] != 0:
        message = body.get("message")
        text = message if isinstance(message, str) and message else "(no message)"
        raise ControllerRejected(body["error"], _redact(text, secrets))
    raise UnexpectedAnswer(
        f"{endpoint}: HTTP {status_code} answer is not the success shape: "
        f"{_snippet(body_bytes, secrets)!r}",
        status_code=status_code,
    )


# --- transport -------------------------------------------------------------


def default_transport(*, max_connections: int = 64) -> httpx.AsyncBaseTransport:
    """The production transport: httpx's API over an aiohttp connection pool.

    Chosen by measurement (BENCHMARKS.md, "Controller client transport").
    """
    return AiohttpTransport(
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=_KEEPALIVE_EXPIRY_SECONDS,
        ),
        trust_env=False,
    )


def _explicit_timeout(timeout: httpx.Timeout | float) -> httpx.Timeout:
    result = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(float(timeout))
    unset = [name for name in ("connect", "read", "write", "pool") if getattr(result, name) is None]
    if unset:
        raise ValueError(f"Controller timeouts must all be set; missing: {', '.join(unset)}")
    return result


def _transport_failure(
    exc: Exception, endpoint: str, secrets: Iterable[str]
) -> ControllerTimeout | ControllerConnectionError:
    """Map an httpx (or stray aiohttp) exception to our transient errors."""
    cause = exc.__cause__
    detail = _redact(f"{type(exc).__name__}: {exc}", secrets)
    # httpx-aiohttp maps *every* aiohttp connection error (refused, reset) to
    # httpx.ConnectTimeout; the aiohttp cause tells a real timeout apart.
    if isinstance(cause, aiohttp.ClientError):
        is_timeout = isinstance(cause, aiohttp.ServerTimeoutError)
    else:
        is_timeout = isinstance(exc, httpx.TimeoutException)
    if is_timeout:
        return ControllerTimeout(f"{endpoint}: Controller timed out ({detail})")
    return ControllerConnectionError(f"{endpoint}: Controller unreachable ({detail})")


# --- client ----------------------------------------------------------------


class ControllerClient:
    """One Controller tenant (``client`` code and API token) over one pooled HTTP client.

    Use as ``async with ControllerClient(...) as controller:`` or call ``aclose()``.
    Safe for many concurrent calls. ``max_connections`` sizes the pool of the
    default transport (a ``transport`` passed in brings its own limits).
    """

    def __init__(
        self,
        base_url: str,
        client: str,
        api_token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_connections: int = 64,
    ) -> None:
        if not api_token:
            raise ValueError("api_token is empty")
        if not client:
            raise ValueError("client is empty")
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._api_token = api_token
        self._urls: dict[str, httpx.URL] = {}
        self._http = httpx.AsyncClient(
            transport=transport
            if transport is not None
            else default_transport(max_connections=max_connections),
            timeout=_explicit_timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=_KEEPALIVE_EXPIRY_SECONDS,
            ),
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            follow_redirects=False,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, client={self._client!r}, "
            f"api_token={_REDACTED!r})"
        )

    async def __aenter__(self) -> ControllerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        await self._http.aclose()

    def _wire_body(self, endpoint: str, fields: Mapping[str, Any]) -> bytes:
        try:
            contract = ENDPOINTS[endpoint]
        except KeyError:
            raise ValueError(f"unknown Controller endpoint {endpoint!r}") from None
        if not contract.client_in_path:  # validate/plate: our client code goes in the body
            fields = {**fields, "client": self._client}
        try:
            wire = contract.to_wire(fields)
        except ContractError as exc:
            raise SchemaViolation(f"{endpoint}: {exc}", error_code=exc.code) from exc
        except (KeyError, TypeError, ValueError) as exc:
            # Unknown field, float amount, naive time: this command can never be sent.
            raise SchemaViolation(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
        wire[contract.token_field] = self._api_token
        return json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode()

    async def call(self, endpoint: str, fields: Mapping[str, Any]) -> ControllerReply:
        """POST canonical ``fields`` to ``endpoint``; return the reply or raise.

        ``fields`` are normalized values keyed by the contract's canonical names
        (``schemas.controller``: ``Decimal`` amounts, aware ``datetime`` times);
        the client adds the token (and, for validate/plate, its client code).

        Raises a ``TransientError`` (retry) or a ``PermanentError`` (dead-letter)
        from ``parkstream.errors``; ``ValueError`` for an unknown endpoint.
        """
        payload = self._wire_body(endpoint, fields)
        url = self._urls.get(endpoint)
        if url is None:  # parsed once: httpx URL parsing is a visible share of a call's CPU
            url = self._urls[endpoint] = httpx.URL(
                self._base_url + ENDPOINTS[endpoint].path(self._client)
            )
        secrets = (self._api_token,)
        started = time.perf_counter()
        try:
            response = await self._http.post(url, content=payload)
        except (httpx.RequestError, aiohttp.ClientError) as exc:
            error = _transport_failure(exc, endpoint, secrets)
            logger.warning(
                'Controller call failed endpoint="%s" error="%s" elapsed="%.3f"',
                endpoint,
                type(error).__name__,
                time.perf_counter() - started,
            )
            raise error from exc
        elapsed = time.perf_counter() - started
        try:
            reply = classify(
                endpoint,
                response.status_code,
                response.headers,
                response.content,
                elapsed_seconds=elapsed,
                secrets=secrets,
            )
        except ControllerRejected as exc:
            logger.warning(
                'Controller rejected endpoint="%s" status="%d" error_code="%d" elapsed="%.3f"',
                endpoint,
                response.status_code,
                exc.error_code,
                elapsed,
            )
            raise
        except (ControllerServerError, ControllerRateLimited, UnexpectedAnswer) as exc:
            logger.warning(
                'Controller call failed endpoint="%s" status="%d" error="%s" elapsed="%.3f"',
                endpoint,
                response.status_code,
                type(exc).__name__,
                elapsed,
            )
            raise
        logger.debug(
            'Controller call done endpoint="%s" status="%d" elapsed="%.3f"',
            endpoint,
            response.status_code,
            elapsed,
        )
        return reply

    # Typed wrappers: one per documented endpoint, canonical fields in.

    async def push_permit(self, fields: Mapping[str, Any]) -> ControllerReply:
        """Create a permit; ``reply.reference_id`` is the Controller's reference id."""
        return await self.call("permits/push", fields)

    async def update_permit(self, fields: Mapping[str, Any]) -> ControllerReply:
        """Update a permit named by its Controller reference id."""
        return await self.call("permits/update", fields)

    async def delete_permit(self, reference_id: str) -> ControllerReply:
        """Delete the permit with this Controller reference id."""
        return await self.call("permits/delete", {"reference_id": reference_id})

    async def permit_stats(self, zones: Iterable[str] | None = None) -> ControllerReply:
        """Permit counts per type and zone (``reply.body["data"]``); all zones by default."""
        return await self.call("permits/stats", {"zones": tuple(zones)} if zones else {})

    async def push_vehicle(self, fields: Mapping[str, Any]) -> ControllerReply:
        """Create a vehicle; ``reply.reference_id`` is the Controller's ``vehicle_id_id``."""
        return await self.call("vehicles/push", fields)

    async def push_profile(self, fields: Mapping[str, Any]) -> ControllerReply:
        """Create or update a user profile; ``reply.reference_id`` is its id as ``str``."""
        return await self.call("profiles/push", fields)

    async def list_user_types(self) -> ControllerReply:
        """The tenant's user types (``reply.body["user_types"]``)."""
        return await self.call("profiles/types/list", {})

    async def validate_plate(self, plate: str) -> ControllerReply:
        """Permits, alarm and DNTT of a plate (``reply.body["data"]``)."""
        return await self.call("validate/plate", {"plate": plate})

    async def send_overdue_to_collections(self) -> ControllerReply:
        """Overdue violations, which the Controller then marks as sent (not idempotent)."""
        return await self.call("violations/send_overdue_to_collections", {})
