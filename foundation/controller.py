"""Async client for the OPS-COM Controller API.

One ``ControllerClient`` holds one pooled ``httpx.AsyncClient``. Callers pass
*canonical* fields (the keys of ``schemas.controller``); the client turns them
into the wire body with the contract, adds the API token itself, POSTs, and
either returns a ``ControllerReply`` or raises one of ``foundation.errors``::

    documented ErrorCode 9000-9034 (any status)      -> ControllerRejected          permanent
    429, or 503 with Retry-After                     -> ControllerRateLimited       transient
    other 5xx                                        -> ControllerServerError       transient
    2xx with the endpoint's documented success shape -> ControllerReply
    anything else: an HTML page, a redirect, a 408,  -> ControllerAnswerUnreadable  transient
      a success without its id, an undocumented
      ErrorCode, a body that is not a JSON object
      (or nested too deep), a validate/plate answer
      whose permits ``plate_permits`` cannot read
    timeout (connect/read/write/pool)                -> ControllerTimeout           transient
    refused/reset, broken HTTP, a body cut mid-way   -> ControllerConnectionError   transient
    a body whose Content-Encoding does not decode    -> ControllerAnswerUnreadable  transient

``relay()`` sends the same wire body and returns the answer unclassified (status, body
with the token masked, Retry-After), for the gateway's pass-through endpoints; only the
transport rows of the table apply to it.

``classify()`` is the first part of that table as a pure function, so it is tested
without I/O; for any status, headers and bytes it returns a ``ControllerReply`` or
raises one of those classes, nothing else. Permanent means the Controller refused the
call with a documented code; every answer that is not one may have been applied, so it
is a lost answer and the dispatcher re-sends it by the journal's rules.

Production transport: ``default_transport()``, httpx over aiohttp
(``httpx-aiohttp``). Measured in BENCHMARKS.md: httpx's own async transport
costs several times more CPU per call at 32 concurrent connections.

The token never leaves this module except in the request body: it is not in
log lines, ``repr()``, exception messages or replies. Whatever is copied out of an
answer (an ErrorMessage, a snippet, a reply's body) goes through
``foundation.redaction``, which masks the token raw, JSON-escaped and URL-encoded.
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
from typing import Any, TypeGuard

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from foundation.errors import (
    ControllerAnswerUnreadable,
    ControllerConnectionError,
    ControllerRateLimited,
    ControllerRejected,
    ControllerServerError,
    ControllerTimeout,
    SchemaViolation,
    TransientError,
)
from foundation.redaction import MASK, redact, redact_json
from foundation.settings import Settings
from schemas.controller import ENDPOINTS, ERROR_MESSAGES, ContractError, plate_permits

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

# How much of an unreadable answer is quoted into the error (after redaction).
_SNIPPET_CHARS = 200
# How much of a Controller's ErrorMessage goes into a dead letter's reason.
_MESSAGE_CHARS = 500

# What reading an answer can raise besides a decoding error: httpx's own errors, aiohttp's
# that httpx-aiohttp lets through unmapped, and raw socket errors (TimeoutError is one).
_TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError)


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


@dataclass(frozen=True)
class RelayedAnswer:
    """A Controller answer as it came (``ControllerClient.relay``): status, body, Retry-After.

    ``body`` is the answer's bytes with the client's token masked wherever the Controller
    echoed it (an error page, a quoted request).
    """

    status_code: int
    body: bytes = field(repr=False)
    retry_after: str | None


# --- classification (pure) -------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_documented_code(value: object) -> TypeGuard[int]:
    return _is_int(value) and value in ERROR_MESSAGES


def _is_id(value: object) -> bool:
    """A reference id as documented: a non-blank string, or an integer (profiles)."""
    return _is_int(value) or (isinstance(value, str) and bool(value.strip()))


def _is_status_success(body: dict[str, Any], id_key: str) -> bool:
    return body.get("status") == "success" and _is_id(body.get(id_key))


def _is_object_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _success_problem(endpoint: str, body: dict[str, Any]) -> str | None:
    """Why ``body`` is not the documented success answer of ``endpoint`` (None: it is)."""
    if endpoint in ("permits/push", "permits/update", "permits/delete", "profiles/push"):
        ok = _is_status_success(body, "reference_id")
    elif endpoint == "vehicles/push":
        ok = _is_status_success(body, "vehicle_id_id")
    elif endpoint == "profiles/types/list":
        ok = body.get("status") == "success" and _is_object_list(body.get("user_types"))
    elif endpoint == "permits/stats":
        ok = _is_object_list(body.get("data"))
    elif endpoint == "violations/send_overdue_to_collections":
        ok = _is_object_list(body.get("records"))
    elif endpoint == "validate/plate":
        if not (_is_int(body.get("error")) and body["error"] == 0):
            return "not the documented success answer of validate/plate"
        try:
            plate_permits(body)
        except ValueError as exc:
            return str(exc)
        return None
    else:
        raise ValueError(f"unknown Controller endpoint {endpoint!r}")
    return None if ok else f"not the documented success answer of {endpoint}"


def _reference_id(body: dict[str, Any]) -> str | None:
    for key in ("reference_id", "vehicle_id_id"):
        value = body.get(key)
        if value is not None:
            return str(value)
    return None


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    """Header ``name`` (lower case), looked up case-blind; None when absent or not text."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            return value if isinstance(value, str) else None
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
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _text(body_bytes: bytes) -> str:
    """The body as text, decoded the way ``json.loads`` decodes bytes (never raises)."""
    return body_bytes.decode(json.detect_encoding(body_bytes), "replace")


def _snippet(body_bytes: bytes, secrets: Iterable[str]) -> str:
    text = " ".join(redact(_text(body_bytes), secrets).split())
    text = redact(text, secrets)
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


def _parse(body_bytes: bytes) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object, or None and why not (never raises)."""
    if not body_bytes.strip():
        return None, "the body is empty"
    try:
        body = json.loads(body_bytes)
    except RecursionError:
        return None, "the body is JSON nested too deep to read"
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, too many digits
        return None, "the body is not JSON"
    if not isinstance(body, dict):
        return None, f"the body is a JSON {type(body).__name__}, not an object"
    return body, ""


def _message(value: object, default: str, secrets: Iterable[str]) -> str:
    text = value if isinstance(value, str) and value.strip() else default
    text = redact(text, secrets)
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def _unreadable(
    endpoint: str,
    status_code: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body_bytes: bytes,
    why: str,
    secrets: tuple[str, ...],
) -> ControllerAnswerUnreadable:
    content_type = _header(headers, "content-type")
    kind = f", {content_type.split(';')[0].strip()[:40]}" if content_type else ""
    snippet = _snippet(body_bytes, secrets)
    message = (
        f"{endpoint}: HTTP {status_code}{kind} answer is neither the documented success "
        f"nor a documented ErrorCode ({why}): {snippet!r}"
    )
    return ControllerAnswerUnreadable(
        redact(message, secrets), status_code=status_code, snippet=snippet
    )


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
    """Turn one HTTP answer of ``endpoint`` into a reply, or raise its error (module table).

    ``headers`` may be any mapping or pair list (looked up case-insensitively);
    ``now`` anchors HTTP-date ``Retry-After`` values; every string in ``secrets`` is
    masked in whatever this quotes from the answer. A validate/plate reply is returned
    only when ``plate_permits`` can read it. ValueError only for an unknown endpoint.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown Controller endpoint {endpoint!r}")
    secrets = tuple(s for s in secrets if s)
    body, why = _parse(body_bytes)
    code = body.get("ErrorCode") if body is not None else None

    # A documented ErrorCode is final whatever the HTTP status (the docs give none).
    if _is_documented_code(code):
        assert body is not None
        raise ControllerRejected(
            code, _message(body.get("ErrorMessage"), "(no ErrorMessage)", secrets)
        )

    if status_code == 429 or status_code >= 500:
        retry_after = parse_retry_after(_header(headers, "retry-after"), now=now)
        if status_code == 429 or (status_code == 503 and retry_after is not None):
            raise ControllerRateLimited(status_code, retry_after)
        raise ControllerServerError(status_code)

    if body is None:
        if not 200 <= status_code < 300:
            why = f"HTTP {status_code} without a documented ErrorCode; {why}"
        raise _unreadable(endpoint, status_code, headers, body_bytes, why, secrets)
    if code is not None:
        # docs/controller-contract.md, decision 37: not a documented refusal, so a lost answer.
        what = f"ErrorCode {str(code)[:20]}" if _is_int(code) else "an ErrorCode that is no integer"
        why = f"{what} is not a documented code"
        raise _unreadable(endpoint, status_code, headers, body_bytes, why, secrets)
    # Plate validation reports failures as {"error": N, "message": "..."}.
    error = body.get("error")
    if endpoint == "validate/plate" and error is not None and error != 0:
        if _is_documented_code(error):
            raise ControllerRejected(error, _message(body.get("message"), "(no message)", secrets))
        what = f"error {str(error)[:20]}" if _is_int(error) else "an error that is no integer"
        why = f"{what} is not a documented code"
        raise _unreadable(endpoint, status_code, headers, body_bytes, why, secrets)
    if not 200 <= status_code < 300:
        why = f"HTTP {status_code} without a documented ErrorCode"
        raise _unreadable(endpoint, status_code, headers, body_bytes, why, secrets)
    problem = _success_problem(endpoint, body)
    if problem is not None:
        raise _unreadable(endpoint, status_code, headers, body_bytes, problem, secrets)
    body = redact_json(body, secrets)  # a reply that echoes the token carries it no further
    return ControllerReply(
        endpoint=endpoint,
        status_code=status_code,
        body=body,
        reference_id=_reference_id(body),
        elapsed_seconds=elapsed_seconds,
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
    """Map an httpx (or stray aiohttp, or socket) exception to our transient errors."""
    cause = exc.__cause__
    detail = redact(f"{type(exc).__name__}: {exc}", secrets)
    # httpx-aiohttp maps *every* aiohttp connection error (refused, reset) to
    # httpx.ConnectTimeout; the aiohttp cause tells a real timeout apart.
    if isinstance(cause, aiohttp.ClientError):
        is_timeout = isinstance(cause, aiohttp.ServerTimeoutError)
    else:
        is_timeout = isinstance(exc, httpx.TimeoutException | TimeoutError)
    # No connection was made, or none was free: the request never left, nothing was applied.
    if isinstance(cause, aiohttp.ClientError):
        never_sent = isinstance(
            cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
        )
    else:
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if is_timeout:
        return ControllerTimeout(
            f"{endpoint}: Controller timed out ({detail})", never_sent=never_sent
        )
    return ControllerConnectionError(
        f"{endpoint}: Controller unreachable ({detail})", never_sent=never_sent
    )


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

    @classmethod
    def from_settings(cls, settings: Settings, *, max_connections: int) -> ControllerClient:
        """The client of ``PARKSTREAM_CONTROLLER_URL``, ``_CLIENT``, ``_API_TOKEN`` and
        ``_TIMEOUT_SECONDS``, with a pool of ``max_connections``."""
        return cls(
            settings.controller_url,
            settings.controller_client,
            settings.controller_api_token,
            timeout=settings.controller_timeout,
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, client={self._client!r}, "
            f"api_token={MASK!r})"
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

        Raises a ``TransientError`` (retry; the call may have been applied) or a
        ``PermanentError`` (dead-letter) from ``foundation.errors``, whatever the
        Controller or the network does; ``ValueError`` for an unknown endpoint.
        """
        payload = self._wire_body(endpoint, fields)
        url = self._url(endpoint)
        secrets = (self._api_token,)
        started = time.perf_counter()
        try:
            response, content = await self._exchange(endpoint, url, payload, secrets)
        except TransientError as error:
            logger.warning(
                'Controller call failed endpoint="%s" error="%s" elapsed="%.3f"',
                endpoint,
                type(error).__name__,
                time.perf_counter() - started,
            )
            raise
        elapsed = time.perf_counter() - started
        try:
            reply = classify(
                endpoint,
                response.status_code,
                response.headers,
                content,
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
        except ControllerAnswerUnreadable as exc:
            logger.warning(
                'Controller answer unreadable endpoint="%s" status="%d" elapsed="%.3f" snippet=%s',
                endpoint,
                response.status_code,
                elapsed,
                json.dumps(exc.snippet, ensure_ascii=False),
            )
            raise
        except TransientError as exc:
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

    async def relay(self, endpoint: str, fields: Mapping[str, Any]) -> RelayedAnswer:
        """POST canonical ``fields`` like ``call``, and return the answer as it came.

        For the gateway's pass-through endpoints, whose vendors read the Controller's own
        answer. Nothing is classified: a 4xx, a 5xx or an ErrorCode body is returned too.
        Raises a ``TransientError`` when no whole answer arrived (a timeout, a refused or
        broken connection, an unreadable status line or body encoding), ``SchemaViolation``
        for fields the contract cannot send.
        """
        secrets = (self._api_token,)
        payload = self._wire_body(endpoint, fields)
        response, content = await self._exchange(endpoint, self._url(endpoint), payload, secrets)
        masked = redact(content.decode("utf-8", "surrogateescape"), secrets, token_fields=False)
        return RelayedAnswer(
            response.status_code,
            masked.encode("utf-8", "surrogateescape"),
            _header(response.headers, "retry-after"),
        )

    def _url(self, endpoint: str) -> httpx.URL:
        url = self._urls.get(endpoint)
        if url is None:  # parsed once: httpx URL parsing is a visible share of a call's CPU
            url = self._urls[endpoint] = httpx.URL(
                self._base_url + ENDPOINTS[endpoint].path(self._client)
            )
        return url

    async def _exchange(
        self, endpoint: str, url: httpx.URL, payload: bytes, secrets: tuple[str, ...]
    ) -> tuple[httpx.Response, bytes]:
        """POST and read the whole answer; whatever fails on the way is a TransientError."""
        request = self._http.build_request("POST", url, content=payload)
        try:
            response = await self._http.send(request, stream=True)
        except _TRANSPORT_ERRORS as exc:
            raise _transport_failure(exc, endpoint, secrets) from exc
        except UnicodeError as exc:  # httpx-aiohttp encodes the reason phrase as strict UTF-8
            raise ControllerAnswerUnreadable(
                f"{endpoint}: the answer's status line cannot be read ({type(exc).__name__})"
            ) from exc
        try:
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except httpx.DecodingError as exc:
            encoding = _header(response.headers, "content-encoding") or "?"
            raise ControllerAnswerUnreadable(
                redact(
                    f"{endpoint}: HTTP {response.status_code} body does not decode as "
                    f"Content-Encoding {encoding[:40]!r} ({exc})",
                    secrets,
                ),
                status_code=response.status_code,
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            raise _transport_failure(exc, endpoint, secrets) from exc
        return response, content

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
