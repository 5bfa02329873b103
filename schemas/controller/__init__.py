"""The OPS-COM Controller API contract: endpoints, field aliases, limits, error codes.

This package is the one source of truth for what the Controller accepts and answers
(vendor docs: ``shared/opscom-api/``). The gateway, the sandbox and the Controller
client all read it; every limit and every message is written here once. It imports
nothing from parkstream (stdlib only) and does no I/O.

What a caller may rely on::

    parse_body(raw, content_type)          bytes -> parsed JSON, or ContractError(9003)
    resolve_path(path)                     "/api/OC-TOMA/v1/permits/push" -> (Endpoint, client)
    ENDPOINTS[name].validate(body)         parsed JSON -> {canonical name: normalized value}
    ENDPOINTS[name].to_wire(fields)        normalized dict -> JSON body the Controller accepts
    ContractError(code).body()             {"ErrorCode": code, "ErrorMessage": "..."}

Normalized values: text is ``str`` (trimmed), amounts are ``Decimal`` with two places,
times are tz-aware UTC ``datetime`` (whole seconds), dates are ``date``, the stats
``zones`` list is a ``tuple[str, ...]``. Absent optional fields are absent from the
dict (never ``None``), so an update names only what it changes.

The decisions taken where the vendor docs are silent or contradict themselves are
recorded, with the doc lines they rest on, in ``docs/controller-contract.md``.

One idea a module, each importing only the ones listed before it::

    errors      ContractError; the documented codes 9000-9034, their messages and HTTP statuses
    fields      limits, FieldSpec, and how one value is read, checked and written back
    endpoints   Endpoint and ENDPOINTS, the table of documented calls
    wire        a request as it arrives: parse_body, resolve_path, client codes, token redaction
    answers     the success bodies, and the validate/plate answer built and read

Callers import every name from here (``from schemas.controller import X``), not from the
modules.
"""

from __future__ import annotations

from schemas.controller.answers import (
    Dntt,
    PlatePermit,
    overdue_body,
    permit_success_body,
    plate_permits,
    plate_validation_body,
    profile_success_body,
    stats_body,
    user_types_body,
    vehicle_success_body,
)
from schemas.controller.endpoints import ENDPOINTS, TOKEN_FIELDS, Endpoint, normalize_currency
from schemas.controller.errors import ERROR_HTTP_STATUS, ERROR_MESSAGES, ContractError
from schemas.controller.fields import (
    AMOUNT_MAX,
    AMOUNT_MAX_LENGTH,
    AMOUNT_MIN,
    CURRENCY_MAX_LENGTH,
    DOCUMENTED_CURRENCIES,
    PERMIT_PLATE_MAX_LENGTH,
    PLATE_TIME_FORMAT,
    TIME_FORMAT,
    TIME_MAX_LENGTH,
    TOKEN_MAX_LENGTH,
    Checked,
    FieldSpec,
    OneOf,
    check_token_present,
    format_time,
    normalize_plate,
    parse_time,
)
from schemas.controller.wire import (
    is_json_content_type,
    normalize_client_code,
    parse_body,
    redact_tokens,
    resolve_path,
)

__all__ = [
    "AMOUNT_MAX",
    "AMOUNT_MAX_LENGTH",
    "AMOUNT_MIN",
    "CURRENCY_MAX_LENGTH",
    "DOCUMENTED_CURRENCIES",
    "ENDPOINTS",
    "ERROR_HTTP_STATUS",
    "ERROR_MESSAGES",
    "PERMIT_PLATE_MAX_LENGTH",
    "PLATE_TIME_FORMAT",
    "TIME_FORMAT",
    "TIME_MAX_LENGTH",
    "TOKEN_FIELDS",
    "TOKEN_MAX_LENGTH",
    "Checked",
    "ContractError",
    "Dntt",
    "Endpoint",
    "FieldSpec",
    "OneOf",
    "PlatePermit",
    "check_token_present",
    "format_time",
    "is_json_content_type",
    "normalize_client_code",
    "normalize_currency",
    "normalize_plate",
    "overdue_body",
    "parse_body",
    "parse_time",
    "permit_success_body",
    "plate_permits",
    "plate_validation_body",
    "profile_success_body",
    "redact_tokens",
    "resolve_path",
    "stats_body",
    "user_types_body",
    "vehicle_success_body",
]
