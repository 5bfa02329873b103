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

# Event fields -> contract fields, per action: an update never resends the start time.
_PERMIT_FIELDS = {
    "CREATE": (
        "plate",
        "amount",
        "currency",
        "start_time",
        "end_time",
        "permit_no",
        "zone",
        "promo_code",
    ),
    "UPDATE": ("plate", "amount", "currency", "end_time"),
    "DELETE": (),
}


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
    }
