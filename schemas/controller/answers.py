"""The Controller's answers: success bodies, and the validate/plate answer built and read.

One builder per documented success answer (``permit_success_body``...
``overdue_body``), shaped exactly as the vendor docs show them; ``plate_validation_body``
builds a validate/plate answer from ``PlatePermit`` and ``Dntt`` entries, and
``plate_permits`` reads the permits back out of one (ValueError for anything else).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.controller.fields import _PLATE_TIME, _calendar_datetime, _calendar_text


def permit_success_body(
    reference_id: str, internal_reference_id: str | None = None
) -> dict[str, Any]:
    """permits/push, update and delete: ``InternalReferenceID`` defaults to ``reference_id``."""
    return {
        "status": "success",
        "reference_id": reference_id,
        "InternalReferenceID": internal_reference_id or reference_id,
    }


def vehicle_success_body(vehicle_id: int | str, warnings: Iterable[str] = ()) -> dict[str, Any]:
    """vehicles/push; the documented key really is ``vehicle_id_id`` (a string)."""
    return {"status": "success", "vehicle_id_id": str(vehicle_id), "warnings": list(warnings)}


def profile_success_body(user_id: int) -> dict[str, Any]:
    """profiles/push: ``reference_id`` is the user's numeric id."""
    return {"status": "success", "reference_id": int(user_id)}


def user_types_body(user_types: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """profiles/types/list from rows with id, type_name, ext_info (id sent as a string)."""
    return {
        "status": "success",
        "user_types": [
            {"id": str(t["id"]), "type_name": t["type_name"], "ext_info": t["ext_info"]}
            for t in user_types
        ],
    }


def stats_body(rows: Iterable[tuple[str, str | None, int]]) -> dict[str, Any]:
    """permits/stats from ``(type, zone, total)`` rows; totals are strings as documented."""
    return {
        "data": [{"type": kind, "zone": zone, "total": str(total)} for kind, zone, total in rows]
    }


def overdue_body(records: Sequence[Mapping[str, Any]], state: Mapping[str, Any]) -> dict[str, Any]:
    """violations/send_overdue_to_collections: ``{"records": [...], "state": {...}}``."""
    return {"records": [dict(r) for r in records], "state": dict(state)}


@dataclass(frozen=True)
class PlatePermit:
    """One permit in a validate/plate answer; ``expires`` in the Controller's display time."""

    type: str
    short_name: str
    expires: datetime


@dataclass(frozen=True)
class Dntt:
    """A do-not-ticket-or-tow entry in a validate/plate answer."""

    location: str
    start: datetime
    end: datetime
    notes: str


def _plate_time(value: datetime) -> str:
    return _calendar_text(value, " ")


def plate_validation_body(
    plate: str,
    permits: Sequence[PlatePermit] = (),
    alarm: str | None = None,
    dntt: Sequence[Dntt] = (),
) -> dict[str, Any]:
    """The documented validate/plate success answer, ``response`` text included.

    Keys of ``responseJSON`` appear only when they have data (the "No data" sample
    answers ``{}``).
    """
    text = ""
    payload: dict[str, Any] = {}
    if permits:
        payload["permits"] = [
            {"expires": _plate_time(p.expires), "type": p.type, "shortName": p.short_name}
            for p in permits
        ]
        text += "".join(
            f"{p.type}: {p.short_name}\n Expires: {_plate_time(p.expires)}\n" for p in permits
        )
        text += "\n"
    if alarm:
        payload["alarm"] = alarm
        text += f"ALARM: {alarm}\n\n"
    if dntt:
        payload["dntt"] = [
            {
                "notes": d.notes,
                "start": _plate_time(d.start),
                "location": d.location,
                "end": _plate_time(d.end),
            }
            for d in dntt
        ]
        text += "".join(
            f"DNTT: {d.location}\n{_plate_time(d.start)}-{_plate_time(d.end)} \n{d.notes}\n\n"
            for d in dntt
        )
    return {
        "error": 0,
        "data": {"response": text, "plate": plate, "responseJSON": payload},
        "message": "",
    }


def _plate_permit(entry: object) -> PlatePermit:
    if not isinstance(entry, Mapping):
        raise ValueError("a permit is not a JSON object")
    kind, short_name, expires = entry.get("type"), entry.get("shortName"), entry.get("expires")
    if not isinstance(kind, str) or not isinstance(short_name, str):
        raise ValueError("a permit's type or shortName is not a string")
    match = _PLATE_TIME.fullmatch(expires) if isinstance(expires, str) else None
    if match is None:
        raise ValueError("a permit's expires is not Y-m-d H:i:s")
    try:
        return PlatePermit(kind, short_name, _calendar_datetime(match.groups()))
    except ValueError:
        raise ValueError("a permit's expires is not a calendar instant") from None


def plate_permits(body: object) -> list[PlatePermit]:
    """The permits of a validate/plate answer (naive ``expires`` in display time).

    The documented shape: ``data.responseJSON`` an object (or ``[]``, PHP's empty
    array), whose ``permits``, when present, is a list of objects with string ``type``,
    ``shortName`` and ``expires`` (``Y-m-d H:i:s``, a real calendar instant). Anything
    else raises ValueError, and only ValueError, whatever ``body`` is.
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping) or "responseJSON" not in data:
        raise ValueError("not a validate/plate answer: no data.responseJSON")
    payload = data["responseJSON"]
    if isinstance(payload, list) and not payload:
        return []
    if not isinstance(payload, Mapping):
        raise ValueError("not a validate/plate answer: responseJSON is not an object")
    entries = payload.get("permits", [])
    if not isinstance(entries, list):
        raise ValueError("not a validate/plate answer: permits is not a list")
    return [_plate_permit(entry) for entry in entries]
