"""The gateway's OpenAPI 3 document, generated from the Controller contract.

Every request attribute, alias, limit and ErrorCode comes from ``schemas.controller``
(nothing here is written by hand twice): a field's documented names become
properties, its limits ``maxLength``/``minLength``/``pattern``, and every code the
contract can raise for an endpoint is listed under the HTTP status it is answered
with. Served at ``GET /openapi.json``; pure functions, no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from producers.references import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_MAX_LENGTH
from schemas.controller import (
    CURRENCY_MAX_LENGTH,
    DOCUMENTED_CURRENCIES,
    ENDPOINTS,
    ERROR_HTTP_STATUS,
    ERROR_MESSAGES,
    TOKEN_MAX_LENGTH,
    Endpoint,
    FieldSpec,
)
from schemas.status import SessionState

PUSH_SUMMARIES = {
    "permits/push": "Push a paid permit (answered with a parkstream reference id)",
    "permits/update": "Update a permit pushed before, by its reference id",
    "permits/delete": "Delete a permit pushed before, by its reference id",
    "vehicles/push": "Push a vehicle",
    "profiles/push": "Create or update a user profile",
}
PASS_THROUGH_ENDPOINTS = (
    "permits/stats",
    "profiles/types/list",
    "violations/send_overdue_to_collections",
    "validate/plate",
)
PASS_THROUGH_SUMMARIES = {
    "permits/stats": "Permit stats (passed through to the Controller)",
    "profiles/types/list": "User types (passed through to the Controller)",
    "violations/send_overdue_to_collections": (
        "Overdue violations, marked as sent to collections (passed through to the Controller)"
    ),
    "validate/plate": "Plate validation (passed through to the Controller)",
}
# Delivery states of GET /api/{client}/v1/permits/{reference_id}.
STATUS_STATES = tuple(state.value for state in SessionState)
AUTH_CODES = (9001, 9002, 9003, 9034)
PERMIT_REFERENCE_ENDPOINTS = ("permits/update", "permits/delete")
TOO_LARGE_STATUS = 413

# Patterns of the contract's kinds (schemas.controller checks them; these describe them).
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-9]|3[01])"
_KIND_PATTERNS = {
    "amount": r"^[0-9]{1,6}\.[0-9]{2}$",
    "datetime": (
        rf"^{_DATE}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        r"(\.[0-9]{1,9})?(Z|z|[+-](0[0-9]|1[0-4]):?[0-5][0-9])?$"
    ),
    "date": rf"^{_DATE}$",
    "year": r"^[0-9]{4}$",
    "digits": r"^[0-9]+$",
    "email": r"^[^@\s]+@[^@\s]+$",
    "province": r"^[A-Za-z]{2}$",
}
_KIND_WORDS = {
    "amount": "a decimal with two penny digits, 0.01 to 999999.99",
    "currency": (
        f"a currency code such as {' or '.join(DOCUMENTED_CURRENCIES)} (any code the "
        "Controller is configured for; sent in upper case)"
    ),
    "datetime": (
        "Y-m-d\\TH:i:s, read as UTC; parkstream also takes fractional seconds and an "
        "offset (Z, +HH:MM), converted to UTC"
    ),
    "date": "yyyy-mm-dd",
    "year": "a 4-digit year",
    "digits": "the id of a Controller record (digits)",
    "email": "an e-mail address",
    "province": "a 2-letter postal abbreviation",
    "zones": "a comma-separated list of zone names",
}


def field_codes(contract: Endpoint) -> set[int]:
    """Every ErrorCode the contract can raise for one of ``contract``'s fields."""
    codes: set[int] = set()
    for spec in contract.fields:
        if spec.required:
            codes.add(spec.required_code)
        codes.add(spec.invalid_code)  # at least: a JSON number where a string belongs
        if spec.max_length is not None and spec.overflow == "error":
            codes.add(spec.too_long_code)
        if spec.min_length is not None:
            codes.add(spec.too_short_code)
    codes.update(group.code for group in contract.one_of)
    names = {spec.name for spec in contract.fields}
    if {"start_time", "end_time"} <= names:
        codes.add(ENDPOINTS["permits/push"].field("end_time").invalid_code)  # end before start
    return codes


def push_codes(endpoint: str) -> set[int]:
    """Every ErrorCode the gateway answers a push to ``endpoint`` with."""
    contract = ENDPOINTS[endpoint]
    codes = set(AUTH_CODES) | field_codes(contract) | {9033}  # 9033: a bad Idempotency-Key
    if endpoint in PERMIT_REFERENCE_ENDPOINTS:
        codes.add(9009)  # not a reference id issued to this vendor
    return codes


def _property(spec: FieldSpec, alias: str) -> dict[str, Any]:
    words = [_KIND_WORDS.get(spec.kind, "text")]
    schema: dict[str, Any] = {"type": "string"}
    if spec.max_length is not None and spec.kind != "datetime":
        if spec.overflow == "truncate":
            words.append(f"longer values are cut to {spec.max_length} characters, with a warning")
        else:
            schema["maxLength"] = spec.max_length
            words.append(f"at most {spec.max_length} characters")
    if spec.min_length is not None:
        schema["minLength"] = spec.min_length
    if spec.kind in _KIND_PATTERNS:
        schema["pattern"] = _KIND_PATTERNS[spec.kind]
    if spec.choices is not None:
        schema["enum"] = list(spec.choices)
        words.append(f"one of {', '.join(spec.choices)} (any case)")
    if spec.required:
        words.insert(0, "Required")
    elif spec.required_on_create:
        words.insert(0, "Required by the Controller when the record is new")
    else:
        words.insert(0, "Optional")
    others = [a for a in spec.aliases if a != alias]
    if others:
        words.append(f"also accepted as {', '.join(others)}")
    schema["description"] = f"{spec.name}: " + "; ".join(words) + "."
    return schema


def request_schema(contract: Endpoint, client: str | None = None) -> dict[str, Any]:
    """The JSON Schema of ``contract``'s request body: every alias of every field.

    ``client``: the one client code served, for a body that carries it (validate/plate).
    """
    properties: dict[str, Any] = {
        contract.token_field: {
            "type": "string",
            "maxLength": TOKEN_MAX_LENGTH,
            "description": "Required. The API token parkstream gave the vendor.",
        }
    }
    all_of: list[dict[str, Any]] = []
    for spec in contract.fields:
        for alias in spec.aliases:
            properties[alias] = _property(spec, alias)
            if spec.name == "client" and client is not None:
                properties[alias]["enum"] = _client_spellings(client)
        if spec.required:
            all_of.append({"anyOf": [{"required": [alias]} for alias in spec.aliases]})
    for group in contract.one_of:
        aliases = [a for name in group.names for a in contract.field(name).aliases]
        all_of.append({"anyOf": [{"required": [alias]} for alias in aliases]})
    schema: dict[str, Any] = {
        "type": "object",
        "required": [contract.token_field],
        "properties": properties,
        "additionalProperties": True,
    }
    if all_of:
        schema["allOf"] = all_of
    return schema


def _error_schema(codes: list[int]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["ErrorCode", "ErrorMessage"],
        "properties": {
            "ErrorCode": {"type": "integer", "enum": codes},
            "ErrorMessage": {"type": "string", "enum": [ERROR_MESSAGES[c] for c in codes]},
        },
    }


def _plate_error_schema(codes: list[int]) -> dict[str, Any]:
    schema = _error_schema(codes)
    schema["required"] = ["error", "message", "ErrorCode", "ErrorMessage"]
    schema["properties"] = {
        "error": {"type": "integer", "enum": codes},
        "data": {"type": "object"},
        "message": {"type": "string"},
        **schema["properties"],
    }
    return schema


def error_responses(codes: set[int], *, envelope: str = "controller") -> dict[str, Any]:
    """Responses for ``codes``, one per HTTP status, each code listed with its message."""
    by_status: dict[int, list[int]] = defaultdict(list)
    for code in sorted(codes):
        by_status[ERROR_HTTP_STATUS[code]].append(code)
    make = _plate_error_schema if envelope == "plate" else _error_schema
    out: dict[str, Any] = {}
    for status, status_codes in sorted(by_status.items()):
        lines = "; ".join(f"{c} {ERROR_MESSAGES[c]}" for c in status_codes)
        out[str(status)] = {
            "description": f"Refused, nothing accepted. ErrorCode: {lines}",
            "content": {"application/json": {"schema": make(status_codes)}},
        }
    return out


def _too_large(envelope: str = "controller") -> dict[str, Any]:
    make = _plate_error_schema if envelope == "plate" else _error_schema
    return {
        "description": (
            "The body is larger than PARKSTREAM_GATEWAY_MAX_BODY_BYTES (64 KiB by default); "
            "nothing accepted. ErrorCode 9003."
        ),
        "content": {"application/json": {"schema": make([9003])}},
    }


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_UNAVAILABLE_BODY = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {"status": {"type": "string", "enum": ["error"]}, "message": {"type": "string"}},
}


def _timed_out() -> dict[str, Any]:
    return {
        "description": (
            "The request's headers and body did not arrive within "
            "PARKSTREAM_GATEWAY_READ_TIMEOUT_SECONDS (30 s by default); nothing accepted, the "
            "connection is closed (docs/gateway.md)."
        ),
        "content": {"application/json": {"schema": _UNAVAILABLE_BODY}},
    }


def _unavailable(what: str) -> dict[str, Any]:
    return {
        "description": f"{what}; nothing was accepted: retry after Retry-After seconds.",
        "headers": _RETRY_AFTER,
        "content": {"application/json": {"schema": _UNAVAILABLE_BODY}},
    }


_PERMIT_SUCCESS = {
    "type": "object",
    "required": ["status", "reference_id", "InternalReferenceID"],
    "properties": {
        "status": {"type": "string", "enum": ["success"]},
        "reference_id": {
            "type": "string",
            "maxLength": 50,
            "pattern": "^[A-Za-z0-9-]+$",
            "description": "parkstream's reference id: name it in updates, deletes and status.",
        },
        "InternalReferenceID": {"type": "string", "description": "Same as reference_id."},
    },
}
_SUCCESS = {
    "permits/push": _PERMIT_SUCCESS,
    "permits/update": _PERMIT_SUCCESS,
    "permits/delete": _PERMIT_SUCCESS,
    "vehicles/push": {
        "type": "object",
        "required": ["status", "vehicle_id_id", "warnings"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "vehicle_id_id": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "parkstream's receipt number (the same for a retry), "
                "not the Controller's vehicle id.",
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "profiles/push": {
        "type": "object",
        "required": ["status", "reference_id"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "reference_id": {
                "type": "integer",
                "minimum": 1,
                "description": "parkstream's receipt number (the same for a retry), "
                "not the Controller's user id.",
            },
        },
    },
}


def _client_spellings(client: str) -> list[str]:
    return list(dict.fromkeys([client, client.replace("-", "_"), client.replace("_", "-")]))


def _client_parameter(client: str) -> dict[str, Any]:
    spellings = _client_spellings(client)
    return {
        "name": "client",
        "in": "path",
        "required": True,
        "description": "The operator's client code; case-blind, '-' and '_' alike. "
        "Any other gets 9034.",
        "schema": {"type": "string", "enum": spellings},
    }


def _push_operation(endpoint: str, client: str) -> dict[str, Any]:
    contract = ENDPOINTS[endpoint]
    description = (
        "Validated with the Controller's rules and published to Kafka; answered with the "
        "Controller's documented body once the broker has acknowledged the event."
    )
    if endpoint in PERMIT_REFERENCE_ENDPOINTS:
        description += (
            " The reference id must be one parkstream issued to the same vendor, else 9009."
        )
    responses: dict[str, Any] = {
        "200": {
            "description": "Accepted: the event is in Kafka.",
            "content": {"application/json": {"schema": _SUCCESS[endpoint]}},
        },
        **error_responses(push_codes(endpoint)),
        str(TOO_LARGE_STATUS): _too_large(),
        "408": _timed_out(),
        "503": _unavailable("The broker cannot take the event now"),
    }
    return {
        "operationId": endpoint.replace("/", "_"),
        "summary": PUSH_SUMMARIES[endpoint],
        "description": description,
        "parameters": [
            _client_parameter(client),
            {
                "name": IDEMPOTENCY_KEY_HEADER,
                "in": "header",
                "required": False,
                "description": "Optional. Retries with the same key get the same answer and "
                "are applied once (without it, the same body counts as the same request).",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH,
                    "pattern": "^[\\x21-\\x7e][\\x20-\\x7e]*$",
                },
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request_schema(contract)}},
        },
        "responses": responses,
    }


def _pass_through_operation(endpoint: str, client: str) -> dict[str, Any]:
    contract = ENDPOINTS[endpoint]
    envelope = "controller" if contract.client_in_path else "plate"
    # The Controller may answer any documented code; parkstream's own checks come first.
    codes = set(AUTH_CODES) | field_codes(contract) | set(ERROR_MESSAGES)
    operation: dict[str, Any] = {
        "operationId": endpoint.replace("/", "_"),
        "summary": PASS_THROUGH_SUMMARIES[endpoint],
        "description": (
            "Checked with the Controller's rules, then sent to the Controller with "
            "parkstream's own token; the Controller's answer is relayed as it is."
        ),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request_schema(contract, client)}},
        },
        "responses": {
            "200": {
                "description": "The Controller's answer.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **error_responses(codes, envelope=envelope),
            str(TOO_LARGE_STATUS): _too_large(envelope),
            "408": _timed_out(),
            "503": _unavailable("The Controller is not reachable or not available"),
        },
    }
    if contract.client_in_path:
        operation["parameters"] = [_client_parameter(client)]
    return operation


def _status_operation(client: str) -> dict[str, Any]:
    return {
        "operationId": "permits_status",
        "summary": "Delivery status of a permit (parkstream extension)",
        "description": (
            "What became of a permit parkstream accepted: accepted (in Kafka, not yet "
            "applied), delivered (the Controller took it: controller_reference_id), "
            "dead_lettered (the Controller refused it: error_code, error_message), "
            "in_doubt (interrupted; operators reconcile it) or deleted. Only the vendor "
            "the id was issued to may ask; any other id gets 9009."
        ),
        "security": [{"bearerToken": []}, {"apiTokenQuery": []}],
        "parameters": [
            _client_parameter(client),
            {
                "name": "reference_id",
                "in": "path",
                "required": True,
                "description": "The reference_id a permits/push was answered with.",
                "schema": {"type": "string", "maxLength": 50, "pattern": "^[A-Za-z0-9-]+$"},
            },
        ],
        "responses": {
            "200": {
                "description": "The permit's state.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["reference_id", "state"],
                            "properties": {
                                "reference_id": {"type": "string"},
                                "state": {"type": "string", "enum": list(STATUS_STATES)},
                                "at": {
                                    "type": "string",
                                    "description": "When the state was reached (UTC, ISO 8601).",
                                },
                                "controller_reference_id": {"type": "string"},
                                "error_code": {"type": ["integer", "null"]},
                                "error_message": {"type": ["string", "null"]},
                            },
                        }
                    }
                },
            },
            **error_responses({9001, 9002, 9009, 9034}),
            "503": _unavailable("The worker cannot be asked now"),
        },
    }


def openapi_document(client: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway serving ``client``."""
    paths: dict[str, Any] = {}
    for endpoint in PUSH_SUMMARIES:
        paths[f"/api/{{client}}/v1/{endpoint}"] = {"post": _push_operation(endpoint, client)}
    for endpoint in PASS_THROUGH_ENDPOINTS:
        contract = ENDPOINTS[endpoint]
        path = f"/api/{{client}}/v1/{endpoint}" if contract.client_in_path else contract.path("")
        paths[path] = {"post": _pass_through_operation(endpoint, client)}
    paths["/api/{client}/v1/permits/{reference_id}"] = {"get": _status_operation(client)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "parkstream gateway (OPS-COM Controller compatible)",
            "version": "1",
            "description": (
                "The OPS-COM Controller's push API, answered as the Controller answers it, "
                "with events published to Kafka. Vendors change only their base URL. "
                f"Currencies: any code of up to {CURRENCY_MAX_LENGTH} characters, such as "
                f"{' or '.join(DOCUMENTED_CURRENCIES)}. See docs/gateway.md."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The vendor's API token.",
                },
                "apiTokenQuery": {"type": "apiKey", "in": "query", "name": "apiToken"},
            }
        },
    }
