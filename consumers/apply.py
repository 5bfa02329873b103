"""One command -> one Controller call -> one result record (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foundation.controller import ControllerReply
from foundation.errors import ControllerRejected
from schemas.controller import ENDPOINTS


def call_fields(command: dict[str, Any], controller_ref: str | None) -> dict[str, Any]:
    """The contract fields of the Controller call a command stands for.

    The command's wire body is read back through the contract (so a malformed
    command is a ``ContractError``), and a parkstream reference id is replaced by
    the Controller's own.
    """
    contract = ENDPOINTS[command["endpoint"]]
    fields = contract.validate({contract.token_field: "-", **command["body"]})
    if "reference_id" in fields and controller_ref is not None:
        fields["reference_id"] = controller_ref
    return fields


def result_record(
    command: dict[str, Any],
    fields: dict[str, Any],
    attempts: int,
    reply: ControllerReply | None = None,
    rejected: ControllerRejected | None = None,
) -> dict[str, Any]:
    """The ``ControllerResult`` for an applied (``reply``, or neither) or ``rejected`` command.

    ``fields`` are the call's contract fields (the permit's times come from them).
    """
    return {
        "command_id": command["command_id"],
        "event_id": command["event_id"],
        "session_id": command["session_id"],
        "endpoint": command["endpoint"],
        "vendor": command["vendor"],
        # No reply and no rejection: a re-sent call refused because the first one landed.
        "outcome": "REJECTED" if rejected is not None else "APPLIED",
        "controller_reference_id": reply.reference_id if reply is not None else None,
        "error_code": rejected.error_code if rejected is not None else None,
        "error_message": rejected.message if rejected is not None else None,
        "http_status": reply.status_code if reply is not None else rejected_status(rejected),
        "attempts": attempts,
        "zone": command["zone"],
        "amount": command["amount"],
        "currency": command["currency"],
        "start_time": fields.get("start_time"),
        "end_time": fields.get("end_time"),
        "completed_at": datetime.now(UTC),
    }


def rejected_status(rejected: ControllerRejected | None) -> int:
    """HTTP status of a rejection, when the client recorded it (0 when unknown)."""
    return int(getattr(rejected, "status_code", 0) or 0)
