"""Vendor requests -> Avro event records (pure functions, no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

# Contract field names (schemas.controller) that a ParkingSessionEvent carries.
SESSION_FIELDS = (
    "plate",
    "amount",
    "currency",
    "start_time",
    "end_time",
    "permit_no",
    "zone",
    "promo_code",
)


def new_reference_id() -> str:
    """A fresh parkstream reference id (a UUID, like the Controller's, 36 characters)."""
    return str(uuid.uuid4())


def session_event(
    action: str,
    session_id: str,
    vendor: str,
    fields: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    received_at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A ``ParkingSessionEvent`` record from a validated (normalized) permit request."""
    record: dict[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "session_id": session_id,
        "action": action,
        "vendor": vendor,
        "received_at": received_at or datetime.now(UTC),
        "idempotency_key": idempotency_key,
    }
    for name in SESSION_FIELDS:
        record[name] = fields.get(name)
    return record
