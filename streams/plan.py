"""Events -> Controller commands (pure functions, no I/O).

A command is exactly one Controller call. Its id is derived from the event id,
so the same event, however often it is redelivered, always plans the same
command id: that is what lets the dispatcher recognise a repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.controller import ENDPOINTS

ACTION_ENDPOINTS = {
    "CREATE": "permits/push",
    "UPDATE": "permits/update",
    "DELETE": "permits/delete",
}


def _fields_of(endpoint: str) -> tuple[str, ...]:
    return tuple(spec.name for spec in ENDPOINTS[endpoint].fields if spec.name != "reference_id")


# Event fields -> contract fields, per action: each call sends what its endpoint takes
# (an update never resends the start time); the reference id is added separately.
_PERMIT_FIELDS = {action: _fields_of(endpoint) for action, endpoint in ACTION_ENDPOINTS.items()}


def command_id(event_id: str, endpoint: str) -> str:
    """The stable id of the command that ``endpoint`` gets from event ``event_id``."""
    return f"{event_id}:{endpoint}"


def command_for_session_event(event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The ``ControllerCommand`` for a ``ParkingSessionEvent``.

    Updates and deletes name the *parkstream* reference id (the session id); the
    dispatcher swaps in the Controller's own id when it makes the call.
    """
    action = event["action"]
    endpoint = ACTION_ENDPOINTS[action]
    fields = {name: event[name] for name in _PERMIT_FIELDS[action] if event.get(name) is not None}
    if action != "CREATE":
        fields["reference_id"] = event["session_id"]
    return {
        "command_id": command_id(event["event_id"], endpoint),
        "event_id": event["event_id"],
        "session_id": event["session_id"],
        "endpoint": endpoint,
        "body": ENDPOINTS[endpoint].to_wire(fields),
        "vendor": event["vendor"],
        "zone": event.get("zone"),
        "amount": event.get("amount"),
        "currency": event.get("currency"),
        "created_at": now or datetime.now(UTC),
        "accepted_at": event.get("received_at"),
    }


# VehicleEvent / UserEvent fields that are bookkeeping, not part of the Controller call.
_EVENT_ONLY_FIELDS = frozenset(
    {"event_id", "vendor", "received_at", "idempotency_key", "reference_id", "source"}
)


def _command_for_push(event: dict[str, Any], endpoint: str, now: datetime | None) -> dict[str, Any]:
    contract = ENDPOINTS[endpoint]
    names = {spec.name for spec in contract.fields}
    fields = {
        name: value
        for name, value in event.items()
        if name in names and name not in _EVENT_ONLY_FIELDS and value is not None
    }
    return {
        "command_id": command_id(event["event_id"], endpoint),
        "event_id": event["event_id"],
        "session_id": None,
        "endpoint": endpoint,
        "body": contract.to_wire(fields),
        "vendor": event["vendor"],
        "zone": None,
        "amount": None,
        "currency": None,
        "created_at": now or datetime.now(UTC),
        "accepted_at": event.get("received_at"),
    }


def command_for_vehicle_event(event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The ``vehicles/push`` ``ControllerCommand`` for a ``VehicleEvent``."""
    return _command_for_push(event, "vehicles/push", now)


def command_for_user_event(event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The ``profiles/push`` ``ControllerCommand`` for a ``UserEvent``."""
    return _command_for_push(event, "profiles/push", now)
