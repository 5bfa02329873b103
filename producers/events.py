"""Vendor requests -> Avro events: the one place a push becomes a record (pure, no I/O).

The gateway, the Python publisher and the file producer all call :func:`accept`, so
a permit pushed over HTTP, from Python or from a file is the same event with the
same key, and gets the same answer::

    endpoint          topic        record               key
    permits/push      sessions     ParkingSessionEvent  reference id (CREATE)
    permits/update    sessions     ParkingSessionEvent  reference id (UPDATE)
    permits/delete    sessions     ParkingSessionEvent  reference id (DELETE)
    vehicles/push     vehicles     VehicleEvent         normalized plate ":" province
    profiles/push     users        UserEvent            unique_id

Validation is the Controller contract's (``schemas.controller``, lenient times: an
offset is converted to UTC). An update or delete must name a reference id issued to
the same vendor (else 9009). The vendor's token is never part of an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from producers.references import (
    ReferenceIssuer,
    dedupe_key,
    fingerprint,
    stable_event_id,
)
from schemas.controller import (
    ENDPOINTS,
    ContractError,
    normalize_plate,
    permit_success_body,
    profile_success_body,
    vehicle_success_body,
)

# Contract field names (schemas.controller) that a ParkingSessionEvent carries.
SESSION_FIELDS = tuple(spec.name for spec in ENDPOINTS["permits/push"].fields)
VEHICLE_FIELDS = tuple(spec.name for spec in ENDPOINTS["vehicles/push"].fields)
USER_FIELDS = tuple(spec.name for spec in ENDPOINTS["profiles/push"].fields)

PERMIT_ACTIONS = {
    "permits/push": "CREATE",
    "permits/update": "UPDATE",
    "permits/delete": "DELETE",
}
# Push endpoint -> (short topic name, Avro record name).
PUSH_ENDPOINTS: dict[str, tuple[str, str]] = {
    "permits/push": ("sessions", "ParkingSessionEvent"),
    "permits/update": ("sessions", "ParkingSessionEvent"),
    "permits/delete": ("sessions", "ParkingSessionEvent"),
    "vehicles/push": ("vehicles", "VehicleEvent"),
    "profiles/push": ("users", "UserEvent"),
}
# Where an event entered parkstream (the EventSource enum of the vehicle and user events).
SOURCES = ("GATEWAY", "PUBLISHER", "FILE")


@dataclass(frozen=True)
class Accepted:
    """A validated push, ready to publish: what goes to Kafka and what the vendor is told.

    ``answer`` is the Controller's documented success body; it may be sent only
    once the broker has acknowledged ``record``.
    """

    endpoint: str
    topic: str  # short name: Settings.topic(topic) is the full one
    key: str
    record_name: str
    record: dict[str, Any]
    answer: dict[str, Any]
    reference_id: str  # the id the vendor is answered with (a receipt number for vehicles/profiles)


def vehicle_key(fields: Mapping[str, Any]) -> str:
    """``PLATE:PROVINCE``: the plate as enforcement matches it (``normalize_plate``) and the
    province name or code the same way, or ``#<provID>`` when only the id was sent."""
    plate = normalize_plate(fields["plate"])
    prov = fields.get("prov")
    province = normalize_plate(prov) if prov else f"#{fields['prov_id']}"
    return f"{plate}:{province}"


def new_reference_id() -> str:
    """A random event id (a UUID)."""
    return str(uuid.uuid4())


def session_event(
    action: str,
    session_id: str,
    vendor: str,
    fields: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    received_at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A ``ParkingSessionEvent`` record from a validated (normalized) permit request."""
    record: dict[str, Any] = {
        "event_id": event_id or new_reference_id(),
        "session_id": session_id,
        "action": action,
        "vendor": vendor,
        "received_at": received_at or datetime.now(UTC),
        "idempotency_key": idempotency_key,
    }
    for name in SESSION_FIELDS:
        record[name] = fields.get(name)
    return record


def _common(
    event_id: str, vendor: str, received_at: datetime, dedupe: str, reference_id: str, source: str
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "vendor": vendor,
        "received_at": received_at,
        "idempotency_key": dedupe,
        "reference_id": reference_id,
        "source": source,
    }


def accept(
    endpoint: str,
    body: object,
    vendor: str,
    references: ReferenceIssuer,
    *,
    idempotency_key: str | None = None,
    source: str = "GATEWAY",
    require_token: bool = True,
    now: datetime | None = None,
) -> Accepted:
    """Validate one push request of ``vendor`` and build its event; raise ``ContractError``.

    ``idempotency_key`` is the vendor's (checked) ``Idempotency-Key`` header. Retries
    of one request (same key, or same validated body without a key) give the same
    reference id and the same ``idempotency_key`` on the event; permit pushes and
    keyed requests also keep the same ``event_id``, so the worker's journal
    recognises them however late they come.
    """
    if endpoint not in PUSH_ENDPOINTS:
        raise KeyError(f"{endpoint} is not a push endpoint")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    contract = ENDPOINTS[endpoint]
    checked = contract.check(body, lenient_times=True, require_token=require_token)
    fields = checked.fields
    request = fingerprint(endpoint, fields, idempotency_key)
    dedupe = dedupe_key(vendor, request)
    received_at = now or datetime.now(UTC)
    topic, record_name = PUSH_ENDPOINTS[endpoint]
    action = PERMIT_ACTIONS.get(endpoint)
    # A push's reference id is derived from the request: the same push is the same
    # session, so its event id may be stable too. Without a key, two identical
    # updates may be two real changes (X, Y, X): only the dedupe window joins them.
    stable = action == "CREATE" or idempotency_key is not None
    event_id = stable_event_id(dedupe) if stable else new_reference_id()

    if action is not None:
        if action == "CREATE":
            session_id = references.reference_id(vendor, request)
        else:
            session_id = fields["reference_id"]
            if not references.verify(session_id, vendor):
                raise ContractError(
                    9009, field="reference_id", detail="not a reference id issued to this vendor"
                )
        record = session_event(
            action,
            session_id,
            vendor,
            fields,
            idempotency_key=dedupe,
            received_at=received_at,
            event_id=event_id,
        )
        return Accepted(
            endpoint,
            topic,
            session_id,
            record_name,
            record,
            permit_success_body(session_id),
            session_id,
        )

    receipt = references.receipt_number(vendor, request)
    record = _common(event_id, vendor, received_at, dedupe, str(receipt), source)
    if endpoint == "vehicles/push":
        record.update({name: fields.get(name) for name in VEHICLE_FIELDS})
        key = vehicle_key(fields)
        answer = vehicle_success_body(receipt, checked.warnings)
    else:
        record.update({name: fields.get(name) for name in USER_FIELDS})
        key = fields["unique_id"]
        answer = profile_success_body(receipt)
    return Accepted(endpoint, topic, key, record_name, record, answer, str(receipt))
