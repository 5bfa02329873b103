"""Reference ids that carry their own proof, and the request fingerprints behind them.

A permit push is answered at once with a parkstream reference id. Later updates and
deletes name it, and the gateway must refuse an id it never issued, or issued to
another vendor, without looking anything up. So an id is two HMAC-SHA256 values
(key: ``PARKSTREAM_REFERENCE_SECRET``), each cut to 80 bits and written in hex::

    ps-<session>-<tag>                  44 characters, [a-z0-9-]
    session = HMAC(secret, "session", vendor, fingerprint)
    tag     = HMAC(secret, "tag", vendor, session)

``verify(id, vendor)`` recomputes the tag for the presenting vendor: another vendor's
id, or a made-up one, fails in constant time. The session part is deterministic, so a
vendor's retry of the same request gets the same id (and the worker's dedupe drops
the repeated event).

The *fingerprint* of a request says which requests are "the same": the vendor's
``Idempotency-Key`` header when given, else a SHA-256 of the canonical validated body.
Vehicle and profile pushes get a *receipt number* from the same fingerprint (their
documented answers carry a number, not a string id).

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from schemas.controller import ContractError, format_time

PREFIX = "ps-"
_PART_HEX = 20  # 80 bits each: far beyond guessing, and the id stays under 50 characters
REFERENCE_ID = re.compile(rf"ps-[0-9a-f]{{{_PART_HEX}}}-[0-9a-f]{{{_PART_HEX}}}")
REFERENCE_ID_LENGTH = len(PREFIX) + 2 * _PART_HEX + 1
RECEIPT_BITS = 48  # below 2**53: exact in every JSON parser

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255
_PRINTABLE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")

# Names the UUIDs of events whose id must be stable across retries.
_EVENT_NAMESPACE = uuid.UUID("6f1c2f0e-6d43-4b8e-9a55-5d0a2b6e7c11")


def _encode(*parts: str) -> bytes:
    """Length-prefixed parts: no choice of vendor name or key can make two inputs collide."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_canonical_value(v) for v in value]
    return value


def body_digest(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of validated, normalized fields: the same request in any alias,
    spacing or key order, with any time offset, has the same digest."""
    canonical = {name: _canonical_value(value) for name, value in fields.items()}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header, or None when absent; 9033 when unusable.

    Allowed: 1-255 printable ASCII characters (a UUID is the usual choice).
    """
    if value is None:
        return None
    if len(value) > IDEMPOTENCY_KEY_MAX_LENGTH or _PRINTABLE.fullmatch(value) is None:
        raise ContractError(
            9033, field=IDEMPOTENCY_KEY_HEADER, detail="not 1-255 printable ASCII characters"
        )
    return value.rstrip()


def fingerprint(endpoint: str, fields: Mapping[str, Any], idempotency_key: str | None) -> str:
    """What makes two requests of one vendor "the same": the key, else the body.

    ``key:<sha256>`` or ``body:<sha256>``; the endpoint is part of it, so a push and
    an update never share a fingerprint.
    """
    if idempotency_key is not None:
        digest = hashlib.sha256(_encode(endpoint, idempotency_key)).hexdigest()
        return f"key:{digest}"
    digest = hashlib.sha256(_encode(endpoint, body_digest(fields))).hexdigest()
    return f"body:{digest}"


def dedupe_key(vendor: str, request_fingerprint: str) -> str:
    """The event's ``idempotency_key``: equal for one vendor's retries, unequal across
    vendors and endpoints. ``key-<hex>`` or ``body-<hex>`` (69 characters)."""
    kind, _, _ = request_fingerprint.partition(":")
    digest = hashlib.sha256(_encode("dedupe", vendor, request_fingerprint)).hexdigest()
    return f"{kind}-{digest}"


def stable_event_id(dedupe: str) -> str:
    """An event id that is the same for every retry of one request (a UUIDv5)."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, dedupe))


class ReferenceIssuer:
    """Issues and verifies reference ids and receipt numbers with one secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the reference secret must not be empty")
        self._key = secret.encode("utf-8")

    def __repr__(self) -> str:
        return "ReferenceIssuer(secret=***)"

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, _encode(*parts), hashlib.sha256).digest()

    def _tag(self, vendor: str, session: str) -> str:
        return self._mac("tag", vendor, session).hex()[:_PART_HEX]

    def reference_id(self, vendor: str, request_fingerprint: str) -> str:
        """The reference id of a permit push by ``vendor``; the same for the same request."""
        session = self._mac("session", vendor, request_fingerprint).hex()[:_PART_HEX]
        return f"{PREFIX}{session}-{self._tag(vendor, session)}"

    def verify(self, reference_id: str, vendor: str) -> bool:
        """True only for an id this secret issued to ``vendor`` (constant-time tag check)."""
        if REFERENCE_ID.fullmatch(reference_id) is None:
            return False
        session, tag = reference_id[len(PREFIX) :].split("-")
        return hmac.compare_digest(tag, self._tag(vendor, session))

    def receipt_number(self, vendor: str, request_fingerprint: str) -> int:
        """A positive number below 2**48 for a vehicle or profile push; same request, same number."""
        mac = self._mac("receipt", vendor, request_fingerprint)
        return int.from_bytes(mac[: RECEIPT_BITS // 8], "big") or 1
