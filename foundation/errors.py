"""The one error module of parkstream.

Every failure that crosses a module boundary is one of these. The tree says
what the caller does with it::

    ParkstreamError
     ├─ TransientError            retry with backoff + jitter; persistent ones open the circuit
     │   ├─ ControllerTimeout           connect / read / write / pool timeout
     │   ├─ ControllerConnectionError   refused, reset, DNS, broken HTTP framing
     │   ├─ ControllerServerError       HTTP 5xx (.status_code)
     │   ├─ ControllerRateLimited       HTTP 429, or 503 with Retry-After (.status_code)
     │   └─ ControllerAnswerUnreadable  an answer that is neither the documented success nor a
     │                                  documented ErrorCode: an HTML page, a redirect, a 408, a
     │                                  success without its id, an undocumented code, a body that
     │                                  cannot be read (.status_code, .snippet); a lost answer
     ├─ PermanentError            dead-letter at once (.error_code, .reason)
     │   ├─ ControllerRejected          the Controller answered a documented ErrorCode 9000-9034
     │   ├─ SchemaViolation             a record or command breaks the contract
     │   └─ UndecodableRecord           bytes that are not a record of ours
     └─ RejectedAtEdge            the gateway answers a vendor Controller-style
                                  (.error_code, .http_status)

Every ``TransientError`` has ``.retry_after`` (seconds the server asked us to
wait, or ``None``). Every ``PermanentError`` has ``.error_code`` (the
Controller code 9000-9034 when there is one, else ``None``) and ``.reason``
(one line for the dead letter). The class attributes ``transient`` and
``permanent`` let a caller decide without a chain of ``isinstance``.

Messages never contain an API token: the Controller client redacts its token
from anything it copies out of an answer before building one of these.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ControllerAnswerUnreadable",
    "ControllerConnectionError",
    "ControllerRateLimited",
    "ControllerRejected",
    "ControllerServerError",
    "ControllerTimeout",
    "ParkstreamError",
    "PermanentError",
    "RejectedAtEdge",
    "SchemaViolation",
    "TransientError",
    "UndecodableRecord",
]


class ParkstreamError(Exception):
    """Base class of every parkstream error."""

    transient: ClassVar[bool] = False
    permanent: ClassVar[bool] = False


# Transient: the same call may succeed later.


class TransientError(ParkstreamError):
    """Retry with backoff; when it persists, open the circuit (never dead-letter)."""

    transient = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, never_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # True when the request cannot have reached the Controller (the connection was
        # never made): nothing can have been applied, so a retry is a plain call again.
        self.never_sent = never_sent


class ControllerTimeout(TransientError):
    """The Controller did not answer within a timeout (connect, read, write or pool)."""


class ControllerConnectionError(TransientError):
    """No usable connection to the Controller: refused, reset, DNS, broken HTTP."""


class ControllerServerError(TransientError):
    """The Controller answered HTTP 5xx without a Controller ``ErrorCode``."""

    def __init__(
        self,
        status_code: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message or f"Controller answered HTTP {status_code}", retry_after=retry_after
        )
        self.status_code = status_code


class ControllerRateLimited(TransientError):
    """HTTP 429, or 503 with Retry-After; ``retry_after`` is in seconds (``None``: not given)."""

    def __init__(self, status_code: int, retry_after: float | None = None) -> None:
        wait = "" if retry_after is None else f", retry after {retry_after:g} s"
        super().__init__(
            f"Controller is rate limiting (HTTP {status_code}{wait})", retry_after=retry_after
        )
        self.status_code = status_code


class ControllerAnswerUnreadable(TransientError):
    """An answer that is neither the endpoint's documented success nor a documented ErrorCode.

    A maintenance page served with 200, a firewall's HTML 403, a 408, a redirect, a
    success body without its reference id, an ErrorCode outside 9000-9034, a body that
    cannot be decoded: the call may or may not have been applied, so it is a lost
    answer, retried by the journal's re-send rules like a timeout. ``status_code`` is
    the answer's HTTP status (``None`` when no status was read); ``snippet`` is the
    start of the body with every secret masked.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        snippet: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status_code = status_code
        self.snippet = snippet


# Permanent: the same input will fail the same way; dead-letter it with its code.


class PermanentError(ParkstreamError):
    """Dead-letter at once; ``reason`` and ``error_code`` go into the ``DeadLetter``."""

    permanent = True

    def __init__(self, reason: str, *, error_code: int | None = None) -> None:
        super().__init__(reason if error_code is None else f"[{error_code}] {reason}")
        self.reason = reason
        self.error_code = error_code


class ControllerRejected(PermanentError):
    """The Controller answered a documented ``{"ErrorCode": N, "ErrorMessage": "..."}``.

    ``N`` is one of the codes of ``schemas.controller.ERROR_MESSAGES`` (9000-9034), in
    any HTTP status; any other code is a ``ControllerAnswerUnreadable``.
    """

    error_code: int

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message, error_code=error_code)
        self.message = message


class SchemaViolation(PermanentError):
    """A record or command does not satisfy its schema or the Controller contract."""


class UndecodableRecord(PermanentError):
    """Bytes that cannot be decoded as a record of the expected schema."""


# At the edge: answered to the vendor, never retried by us.


class RejectedAtEdge(ParkstreamError):
    """The gateway refuses a vendor request the way the Controller would.

    ``body()`` is the Controller-style answer; pass ``message`` to override the
    documented text for ``error_code``.
    """

    def __init__(self, error_code: int, http_status: int = 400, message: str | None = None) -> None:
        super().__init__(f"[{error_code}] rejected at the edge (HTTP {http_status})")
        self.error_code = error_code
        self.http_status = http_status
        self.message = message

    def body(self) -> dict[str, int | str]:
        """``{"ErrorCode": N, "ErrorMessage": "..."}`` with the documented message."""
        message = self.message
        if message is None:
            # Lazy: the documented messages live once, in the contract.
            from schemas.controller import ERROR_MESSAGES

            message = ERROR_MESSAGES[self.error_code]
        return {"ErrorCode": self.error_code, "ErrorMessage": message}
