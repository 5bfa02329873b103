"""A request as it reaches the Controller: its body, its path, its client code, its token.

``parse_body`` decodes a body as Laravel would (JSON only when sent as JSON, 9003
otherwise), ``resolve_path`` maps a request path to its endpoint and client code,
``normalize_client_code`` makes client codes comparable, and ``redact_tokens`` masks the
token fields of a parsed body before it is shown anywhere.
"""

from __future__ import annotations

import json
from typing import Any

from schemas.controller.endpoints import ENDPOINTS, TOKEN_FIELDS, Endpoint
from schemas.controller.errors import ContractError
from schemas.controller.fields import _SURROGATE, _php_trim


def is_json_content_type(content_type: str | None) -> bool:
    """Laravel's ``isJson()``: the Content-Type contains ``/json`` or ``+json``."""
    if not content_type:
        return False
    lowered = content_type.lower()
    return "/json" in lowered or "+json" in lowered


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_lone_surrogate(value: object) -> bool:
    """True if any string (or key) holds a ``\\ud800``-style escape that is not a pair."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_body(raw: bytes, content_type: str | None) -> object:
    """Decode a request body; ContractError(9003) unless it is JSON sent as JSON.

    ``content_type`` is the request's Content-Type header (None when absent). Any JSON
    value is returned; whether it is an object is the endpoint's check.
    """
    if not is_json_content_type(content_type):
        raise ContractError(9003, detail="Content-Type is not application/json")
    try:
        text = raw.decode("utf-8")
        if not text.strip():
            raise ValueError("empty body")
        parsed = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ContractError(9003, detail="body is not JSON") from None
    if _has_lone_surrogate(parsed):  # PHP's json_decode: JSON_ERROR_UTF16
        raise ContractError(9003, detail="unpaired UTF-16 surrogate escape")
    return parsed


def normalize_client_code(client: str) -> str:
    """Client codes compare case-blind with ``-`` and ``_`` alike (docs use OC-TOMA and OC_TOMA)."""
    return _php_trim(client).upper().replace("_", "-")


def resolve_path(path: str) -> tuple[Endpoint, str | None]:
    """Map a request path to ``(endpoint, client code from the path or None)``.

    Raises ContractError(9000) for a documented endpoint without its client code and
    LookupError when the path names no documented endpoint.
    """
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[0] != "api":
        raise LookupError(path)
    if len(parts) >= 4 and parts[2] == "v1":
        endpoint = ENDPOINTS.get("/".join(parts[3:]))
        if endpoint is not None and endpoint.client_in_path:
            if not _php_trim(parts[1]):
                raise ContractError(9000, detail="empty client segment")
            return endpoint, parts[1]
    if parts[1] == "v1":
        endpoint = ENDPOINTS.get("/".join(parts[2:]))
        if endpoint is not None:
            if endpoint.client_in_path:
                raise ContractError(9000, detail="no client segment in the path")
            return endpoint, None
    raise LookupError(path)


def redact_tokens(body: object, mask: str = "***") -> object:
    """A copy of a parsed body with every token field's value replaced by ``mask``."""
    if isinstance(body, dict):
        return {
            key: (mask if key in TOKEN_FIELDS else redact_tokens(value, mask))
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [redact_tokens(item, mask) for item in body]
    return body
