"""The sandbox's Controller behaviour: what each documented call does to the records.

Input is already validated by the contract (``schemas.controller``); this module adds
what needs state: reference ids (9008/9009), uniqueness (9012, 9019, 9020, 9022 for a
ticket number; none for a VIN, which the docs do not make unique),
lookups (plate types, provinces, user types, login sources: 9033/9015) and the answers.
"""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sandbox import seed
from sandbox.config import SandboxConfig
from sandbox.state import Store, from_db_time, to_db_time
from schemas.controller import (
    ENDPOINTS,
    Checked,
    ContractError,
    Dntt,
    PlatePermit,
    normalize_plate,
    overdue_body,
    parse_time,
    permit_success_body,
    plate_validation_body,
    profile_success_body,
    stats_body,
    user_types_body,
    vehicle_success_body,
)

SAMPLE_SEEDED = "sample_violation_seeded"


def _id_key(value: str) -> str:
    """Numeric ids compare without leading zeros ("007" is 7), kept as text."""
    return value.lstrip("0") or "0"


def _violation_stamp(at: datetime) -> str:
    """The timestamp style of the documented violation record."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _parse_record_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be a timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _display(value: datetime, zone: tzinfo) -> datetime:
    """``value`` as naive wall time in ``zone`` (left in UTC where that passes year 9999)."""
    try:
        return value.astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        return value.astimezone(UTC).replace(tzinfo=None)


class FakeController:
    """Answers validated Controller calls from a :class:`Store`."""

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self.store = store
        self.config = config
        self.fixed_now: datetime | None = config.now
        self._login_sources = {s.upper() for s in config.login_sources}
        self._handlers: dict[str, Callable[[Checked], dict[str, Any]]] = {
            "permits/push": self.permits_push,
            "permits/update": self.permits_update,
            "permits/delete": self.permits_delete,
            "permits/stats": self.permits_stats,
            "vehicles/push": self.vehicles_push,
            "profiles/push": self.profiles_push,
            "profiles/types/list": self.user_types,
            "violations/send_overdue_to_collections": self.send_overdue,
            "validate/plate": self.validate_plate,
        }
        missing = set(ENDPOINTS) - set(self._handlers)
        if missing:
            raise RuntimeError(f"sandbox does not implement {sorted(missing)}")
        self.seed()

    def now(self) -> datetime:
        return self.fixed_now or datetime.now(UTC)

    def seed(self) -> None:
        """Seed the documented examples once per store (a restart keeps what was sent)."""
        if self.config.seed_examples and self.store.meta(SAMPLE_SEEDED) is None:
            record = copy.deepcopy(seed.SAMPLE_VIOLATION)
            self.store.add_violations(
                [(record["ViolationID"], _parse_record_time(record["Due"]), record)]
            )
            self.store.set_meta(SAMPLE_SEEDED, to_db_time(self.now()))

    def reset(self) -> None:
        self.store.reset()
        self.fixed_now = self.config.now
        self.seed()

    def call(self, endpoint: str, checked: Checked) -> dict[str, Any]:
        """The success body of ``endpoint`` for a validated request, or ContractError."""
        return self._handlers[endpoint](checked)

    # permits --------------------------------------------------------------------

    def permits_push(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        permit_no = fields.get("permit_no")
        if permit_no is not None and self.store.permit_by_ticket(permit_no) is not None:
            raise ContractError(9022, field="permit_no", detail="ticket number already pushed")
        reference_id = str(uuid.uuid4())
        stamp = to_db_time(self.now())
        amount = fields.get("amount")
        self.store.insert_permit(
            {
                "reference_id": reference_id,
                "plate": fields["plate"],
                "plate_norm": normalize_plate(fields["plate"]),
                "zone": fields.get("zone"),
                "permit_no": permit_no,
                "promo_code": fields.get("promo_code"),
                "amount": None if amount is None else f"{amount:.2f}",
                "currency": fields.get("currency"),
                "start_time": to_db_time(fields["start_time"]),
                "end_time": to_db_time(fields["end_time"]),
                "permit_type": self.config.permit_type,
                "created": stamp,
                "updated": stamp,
            }
        )
        return permit_success_body(reference_id)

    def _live_permit(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        permit = self.store.permit(fields["reference_id"])
        if permit is None:
            raise ContractError(9009, field="reference_id", detail="no live permit")
        return permit

    def permits_update(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        permit = self._live_permit(fields)
        changes: dict[str, Any] = {}
        if "end_time" in fields:
            if fields["end_time"] < from_db_time(permit["start_time"]):
                raise ContractError(9005, field="end_time", detail="end before stored start")
            changes["end_time"] = to_db_time(fields["end_time"])
        if "plate" in fields:
            changes["plate"] = fields["plate"]
            changes["plate_norm"] = normalize_plate(fields["plate"])
        if "amount" in fields:
            changes["amount"] = f"{fields['amount']:.2f}"
        if "currency" in fields:
            changes["currency"] = fields["currency"]
        changes["updated"] = to_db_time(self.now())
        self.store.update_permit(permit["reference_id"], changes)
        return permit_success_body(permit["reference_id"])

    def permits_delete(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        permit = self._live_permit(fields)
        self.store.update_permit(
            permit["reference_id"], {"deleted": 1, "updated": to_db_time(self.now())}
        )
        return permit_success_body(permit["reference_id"])

    def permits_stats(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        return stats_body(self.store.permit_stats(fields.get("zones")))

    # vehicles -------------------------------------------------------------------

    @staticmethod
    def _lookup(
        table: Sequence[tuple[str, str, str]],
        fields: Mapping[str, Any],
        id_field: str,
        name_field: str,
    ) -> str:
        """The id of the row named by ``id_field`` (by id) or ``name_field`` (by name/code)."""
        if id_field in fields:
            wanted = _id_key(fields[id_field])
            for row_id, _, _ in table:
                if row_id == wanted:
                    return row_id
            raise ContractError(9033, field=id_field, detail="unknown id")
        wanted_name = fields[name_field].casefold()
        for row_id, first, second in table:
            if wanted_name in (first.casefold(), second.casefold()):
                return row_id
        raise ContractError(9033, field=name_field, detail="unknown name")

    def vehicles_push(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        plate_type_id = self._lookup(seed.PLATE_TYPES, fields, "plate_type_id", "plate_type")
        prov_id = self._lookup(seed.PROVINCES, fields, "prov_id", "prov")
        plate_norm = normalize_plate(fields["plate"])
        if self.store.vehicle(plate_norm, prov_id) is not None:
            raise ContractError(9012, field="plate", detail="plate and province exist")
        record = {
            **fields,
            "plate_norm": plate_norm,
            "plate_type_id": plate_type_id,
            "prov_id": prov_id,
        }
        vehicle_id = self.store.insert_vehicle(record, self.now())
        return vehicle_success_body(vehicle_id, checked.warnings)

    # profiles -------------------------------------------------------------------

    def profiles_push(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        if fields["login_source"].upper() not in self._login_sources:
            raise ContractError(9015, field="login_source", detail="not a configured source")
        user_type_id = fields.get("user_type_id")
        if user_type_id is not None and _id_key(user_type_id) not in {
            t["id"] for t in seed.USER_TYPES
        }:
            raise ContractError(9033, field="user_type_id", detail="unknown user type")
        unique_id = fields["unique_id"]
        existing = self.store.profile(unique_id)
        data: dict[str, Any] = {}
        if existing is None:
            ENDPOINTS["profiles/push"].check_create(fields)
        else:
            data.update(json.loads(existing["data"]))
        data.update(
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in fields.items()}
        )
        email_norm = data["email"].casefold() if data.get("email") else None
        user_name_norm = data["user_name"].casefold() if data.get("user_name") else None
        if email_norm is not None:
            other = self.store.profile_with("email_norm", email_norm)
            if other is not None and other["unique_id"] != unique_id:
                raise ContractError(9019, field="email", detail="email belongs to another user")
        if user_name_norm is not None:
            other = self.store.profile_with("user_name_norm", user_name_norm)
            if other is not None and other["unique_id"] != unique_id:
                raise ContractError(9020, field="user_name", detail="username taken")
        user_id = self.store.save_profile(
            unique_id, data, email_norm=email_norm, user_name_norm=user_name_norm, at=self.now()
        )
        return profile_success_body(user_id)

    def user_types(self, checked: Checked) -> dict[str, Any]:
        return user_types_body(seed.USER_TYPES)

    # violations -----------------------------------------------------------------

    def send_overdue(self, checked: Checked) -> dict[str, Any]:
        now = self.now()
        records = self.store.take_overdue(now, _violation_stamp(now))
        state = {"version": seed.SAMPLE_STATE_VERSION, "csrf_token": secrets.token_urlsafe(30)}
        return overdue_body(records, state)

    def add_violations(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        """Seed violations over the documented record; returns their ViolationIDs.

        Raises ValueError for a malformed record (nothing is stored then).
        """
        next_id = self.store.next_violation_id()
        prepared: list[tuple[int, datetime, dict[str, Any]]] = []
        taken: set[int] = set()
        for index, given in enumerate(records):
            if not isinstance(given, Mapping):
                raise ValueError(f"records[{index}] must be an object")
            record = copy.deepcopy(seed.SAMPLE_VIOLATION)
            record.update(copy.deepcopy(dict(given)))
            violation_id = given.get("ViolationID")
            if violation_id is None:
                while next_id in taken or self.store.has_violation(next_id):
                    next_id += 1
                violation_id = next_id
            if isinstance(violation_id, bool) or not isinstance(violation_id, int):
                raise ValueError(f"records[{index}].ViolationID must be an integer")
            if violation_id in taken or self.store.has_violation(violation_id):
                raise ValueError(f"records[{index}].ViolationID {violation_id} exists")
            taken.add(violation_id)
            record["ViolationID"] = violation_id
            if "UUID" not in given:
                record["UUID"] = str(uuid.uuid4())
            if "Ticket" not in given:
                record["Ticket"] = f"1-{100000 + violation_id}"
            if "Due" not in given:
                record["Due"] = _violation_stamp(self.now() - timedelta(days=1))
            if "SentToCollections" not in given:
                record["SentToCollections"] = None
            try:
                due = _parse_record_time(record["Due"])
            except ValueError as exc:
                raise ValueError(f"records[{index}].Due {exc}") from None
            prepared.append((violation_id, due, record))
        self.store.add_violations(prepared)
        return [vid for vid, _, _ in prepared]

    # validate/plate -------------------------------------------------------------

    def validate_plate(self, checked: Checked) -> dict[str, Any]:
        fields = checked.fields
        now = self.now()
        zone = self.config.timezone
        plate_norm = normalize_plate(fields["plate"])
        permits = [
            PlatePermit(
                type=row["permit_type"],
                short_name=row["zone"] or row["permit_no"] or "",
                expires=_display(from_db_time(row["end_time"]), zone),
            )
            for row in self.store.active_permits(plate_norm, now)
        ]
        alarm, notes = self.store.plate_notes(plate_norm)
        dntt = [
            Dntt(
                location=n["location"],
                start=_display(parse_time(n["start"]), zone),
                end=_display(parse_time(n["end"]), zone),
                notes=n["notes"],
            )
            for n in notes
        ]
        return plate_validation_body(fields["plate"], permits, alarm, dntt)

    def set_plate_notes(self, data: Mapping[str, Any]) -> None:
        """Seed an alarm and DNTT entries for a plate; ValueError when malformed."""
        plate = data.get("plate")
        if not isinstance(plate, str) or not normalize_plate(plate):
            raise ValueError("plate must be a non-empty string")
        alarm = data.get("alarm")
        if alarm is not None and not isinstance(alarm, str):
            raise ValueError("alarm must be a string or null")
        entries = data.get("dntt", [])
        if not isinstance(entries, list):
            raise ValueError("dntt must be a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), str) for k in ("location", "start", "end", "notes")
            ):
                raise ValueError(f"dntt[{index}] needs string location, start, end, notes")
            for key in ("start", "end"):
                try:
                    parse_time(entry[key])
                except ValueError:
                    raise ValueError(f"dntt[{index}].{key} must be Y-m-d\\TH:i:s UTC") from None
        self.store.set_plate_notes(normalize_plate(plate), alarm, entries)
