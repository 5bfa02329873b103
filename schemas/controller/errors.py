"""The Controller's documented errors: codes 9000-9034, their messages, ContractError.

``ERROR_MESSAGES`` holds each documented message verbatim, ``ERROR_HTTP_STATUS`` the
HTTP status parkstream answers it with, and ``ContractError`` is the one exception the
contract raises for a request the Controller refuses (``.body()`` is the documented
``{"ErrorCode": N, "ErrorMessage": "..."}``). The generic field codes 9030-9033 are named
here for the field specs.
"""

from __future__ import annotations

from typing import Any

ERROR_MESSAGES: dict[int, str] = {
    9000: "Client Code is missing from the request.",
    9001: "API Token is missing from the request.",
    9002: "The supplied API token does not have permission to perform that request.",
    9003: "Could not parse the request.",
    9004: "End Time is a required field.",
    9005: "The end time value is invalid.",
    9006: "Plate is a required field.",
    9007: "The start time value is invalid.",
    9008: (
        "Reference ID is required. On a new permit push, a reference id is returned. "
        "This is required for updates and deletes."
    ),
    9009: "Record not found.",
    9010: "The Plate Type is required.",
    9011: "The province or state is required.",
    9012: "The vehicle is already in the database.",
    9013: "A unique id is required.",
    9014: "The login source is required.",
    9015: "The login source is invalid.",
    9016: "The user e-mail is required.",
    9017: "The user's first name is required.",
    9018: "The user's last name is required.",
    9019: "The user's email address must be unique.",
    9020: "The user's username must be unique.",
    9021: "The vehicle's plate length exceeds 50 characters.",
    9022: "A record already exists with the supplied details.",
    9030: "The field's maximum number of characters was exceeded.",
    9031: "The field is required.",
    9032: "The field has a minimum number of characters.",
    9033: "The field's value is invalid.",
    9034: "The API Token does not exist for the specified client.",
}

# The docs show only the error body; the HTTP status is our decision (Laravel's
# conventions: 422 for field validation). Clients must classify by ErrorCode.
ERROR_HTTP_STATUS: dict[int, int] = {
    9000: 400,
    9001: 401,
    9002: 403,
    9003: 400,
    9004: 422,
    9005: 422,
    9006: 422,
    9007: 422,
    9008: 422,
    9009: 404,
    9010: 422,
    9011: 422,
    9012: 409,
    9013: 422,
    9014: 422,
    9015: 422,
    9016: 422,
    9017: 422,
    9018: 422,
    9019: 409,
    9020: 409,
    9021: 422,
    9022: 409,
    9030: 422,
    9031: 422,
    9032: 422,
    9033: 422,
    9034: 403,
}

MAX_LENGTH_EXCEEDED = 9030
REQUIRED = 9031
MIN_LENGTH = 9032
INVALID = 9033


class ContractError(Exception):
    """A request the Controller refuses, carrying the first documented error found.

    ``field`` is the canonical name of the offending field (None for whole-request
    errors); ``detail`` says why, for logs, and never contains the field's value.
    """

    def __init__(self, code: int, *, field: str | None = None, detail: str | None = None):
        if code not in ERROR_MESSAGES:
            raise ValueError(f"undocumented Controller error code {code!r}")
        self.code = code
        self.message = ERROR_MESSAGES[code]
        self.field = field
        self.detail = detail
        self.http_status = ERROR_HTTP_STATUS[code]
        where = f" field={field}" if field else ""
        why = f" ({detail})" if detail else ""
        super().__init__(f"{code} {self.message}{where}{why}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.code, self.field, self.detail))

    def body(self) -> dict[str, Any]:
        """The documented error body: ``{"ErrorCode": code, "ErrorMessage": message}``."""
        return {"ErrorCode": self.code, "ErrorMessage": self.message}


def _rebuild_error(code: int, field: str | None, detail: str | None) -> ContractError:
    return ContractError(code, field=field, detail=detail)
