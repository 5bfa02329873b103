"""The Controller's endpoints: the Endpoint class and the table of documented calls.

``Endpoint`` checks a parsed body against its fields in documented order (the first
error found is raised), turns normalized fields back into the wire body, and builds the
endpoint's error answer. ``ENDPOINTS`` maps each documented call's name
(``permits/push``...) to its Endpoint, and ``TOKEN_FIELDS`` collects the names their
tokens go by; ``normalize_currency`` applies the permit endpoints' currency rule to a
value from elsewhere (a setting).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

from schemas.controller.errors import ContractError
from schemas.controller.fields import (
    AMOUNT_MAX_LENGTH,
    CURRENCY_MAX_LENGTH,
    DATE_LENGTH,
    DRIVER_LICENCE_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    LOGIN_SOURCE_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NUMBER_MAX_LENGTH,
    PERMIT_PLATE_MAX_LENGTH,
    PHONE_MAX_LENGTH,
    POSTAL_CODE_MAX_LENGTH,
    PROMO_CODE_MAX_LENGTH,
    PROVINCE_CODE_LENGTH,
    REFERENCE_ID_MAX_LENGTH,
    STREET2_MAX_LENGTH,
    TICKET_NUMBER_MAX_LENGTH,
    TIME_MAX_LENGTH,
    VEHICLE_NAME_MAX_LENGTH,
    VEHICLE_PLATE_MAX_LENGTH,
    VIN_MAX_LENGTH,
    ZONE_MAX_LENGTH,
    Checked,
    FieldSpec,
    OneOf,
    _check_field,
    _format_amount,
    _json_object,
    _present,
    check_token_present,
    format_time,
)


@dataclass(frozen=True)
class Endpoint:
    """One Controller API call.

    ``fields`` are in check order: the first documented error found is raised.
    """

    name: str
    fields: tuple[FieldSpec, ...]
    token_field: str = "apiToken"
    client_in_path: bool = True
    one_of: tuple[OneOf, ...] = ()
    _by_name: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {spec.name: spec for spec in self.fields}
        if len(by_name) != len(self.fields):
            raise ValueError(f"{self.name}: duplicate canonical field names")
        for group in self.one_of:
            missing = [n for n in group.names if n not in by_name]
            if missing:
                raise ValueError(f"{self.name}: one-of names unknown fields {missing}")
        object.__setattr__(self, "_by_name", by_name)

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r})"

    def field(self, name: str) -> FieldSpec:
        """The FieldSpec with canonical ``name`` (KeyError if the endpoint has none)."""
        return self._by_name[name]

    def path(self, client: str) -> str:
        """The request path, e.g. ``/api/OC-TOMA/v1/permits/push``."""
        if not self.client_in_path:
            return f"/api/v1/{self.name}"
        return f"/api/{quote(client, safe='')}/v1/{self.name}"

    def credentials(self, body: object) -> tuple[str | None, str]:
        """``(client from the body or None, token)``; raises 9003, 9000 or 9001.

        Only validate/plate carries its client code in the body.
        """
        body = _json_object(body)
        client: str | None = None
        if not self.client_in_path:
            client = _check_field(
                self.field("client"), body, lenient_times=False, warnings=[]
            )  # required: raises 9000 when absent
        return client, check_token_present(body, self.token_field)

    def check(
        self, body: object, *, lenient_times: bool = False, require_token: bool = True
    ) -> Checked:
        """Validate ``body`` (parsed JSON of any type); normalized fields plus warnings.

        Undocumented keys are ignored. ``require_token=False`` validates a body without
        its token (what :meth:`to_wire` produces).
        """
        body = _json_object(body)
        if require_token:
            self.credentials(body)
        groups = {group.names[0]: group for group in self.one_of}
        fields: dict[str, Any] = {}
        warnings: list[str] = []
        for spec in self.fields:
            group = groups.get(spec.name)
            if group is not None and not any(
                _present(body.get(alias))
                for name in group.names
                for alias in self.field(name).aliases
            ):
                raise ContractError(group.code, field=spec.name, detail="none of one-of given")
            value = _check_field(spec, body, lenient_times=lenient_times, warnings=warnings)
            if value is not None:
                fields[spec.name] = value
        start, end = fields.get("start_time"), fields.get("end_time")
        if start is not None and end is not None and end < start:
            raise ContractError(9005, field="end_time", detail="end before start")
        return Checked(fields=fields, warnings=tuple(warnings))

    def validate(
        self, body: object, *, lenient_times: bool = False, require_token: bool = True
    ) -> dict[str, Any]:
        """Parsed JSON -> normalized dict keyed by canonical names (token not included).

        Raises ContractError with the first documented error.
        """
        return self.check(body, lenient_times=lenient_times, require_token=require_token).fields

    def check_create(self, fields: Mapping[str, Any]) -> None:
        """Raise the first error for fields required only on create (profiles: 9016-9018)."""
        for spec in self.fields:
            if spec.required_on_create and fields.get(spec.name) is None:
                raise ContractError(spec.required_code, field=spec.name, detail="missing on create")

    def to_wire(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Normalized dict -> JSON body with the documented names (``aliases[0]``).

        Decimals become ``"14.50"``, datetimes ``Y-m-d\\TH:i:s`` in UTC, dates
        ``yyyy-mm-dd``, zones a comma list. None values are left out; the token is not
        added. Unknown names raise KeyError (a typo must not vanish silently).
        """
        unknown = sorted(set(fields) - set(self._by_name))
        if unknown:
            raise KeyError(f"{self.name} has no fields {unknown}")
        wire: dict[str, Any] = {}
        for spec in self.fields:
            value = fields.get(spec.name)
            if value is None:
                continue
            if spec.kind == "amount":
                wire[spec.wire_name] = _format_amount(value)
            elif spec.kind == "datetime":
                wire[spec.wire_name] = format_time(value)
            elif spec.kind == "date":
                wire[spec.wire_name] = value.isoformat() if isinstance(value, date) else str(value)
            elif spec.kind == "zones":
                wire[spec.wire_name] = value if isinstance(value, str) else ",".join(value)
            else:
                wire[spec.wire_name] = str(value)
        return wire

    def error_body(self, error: ContractError) -> dict[str, Any]:
        """The error answer of this endpoint.

        validate/plate documents its own envelope (``error`` code, ``message``); it gets
        both that envelope and the ErrorCode/ErrorMessage pair.
        """
        body = error.body()
        if self.client_in_path:
            return body
        return {"error": error.code, "data": {}, "message": error.message, **body}


def _permit_time(name: str, aliases: tuple[str, ...], *, required: bool, code: int) -> FieldSpec:
    return FieldSpec(
        name,
        aliases,
        kind="datetime",
        required=required,
        max_length=TIME_MAX_LENGTH,
        required_code=9004 if name == "end_time" else code,
        invalid_code=code,
        too_long_code=code,
    )


_REFERENCE_ID = FieldSpec(
    "reference_id",
    ("referenceID", "referenceid", "reference_id"),
    required=True,
    max_length=REFERENCE_ID_MAX_LENGTH,
    required_code=9008,
)


def _amount(aliases: tuple[str, ...]) -> FieldSpec:
    return FieldSpec("amount", aliases, kind="amount", max_length=AMOUNT_MAX_LENGTH)


def _currency(aliases: tuple[str, ...]) -> FieldSpec:
    # Only the documented length is a rule: no list of codes (decision 18).
    return FieldSpec("currency", aliases, kind="currency", max_length=CURRENCY_MAX_LENGTH)


def _permit_plate(aliases: tuple[str, ...], *, required: bool) -> FieldSpec:
    return FieldSpec(
        "plate",
        aliases,
        required=required,
        max_length=PERMIT_PLATE_MAX_LENGTH,
        required_code=9006,
    )


def _text(name: str, max_length: int | None, *aliases: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, aliases or (name,), max_length=max_length, **kw)


def _province(name: str, *aliases: str) -> FieldSpec:
    return FieldSpec(
        name,
        aliases,
        kind="province",
        max_length=PROVINCE_CODE_LENGTH,
        min_length=PROVINCE_CODE_LENGTH,
    )


def _truncated(name: str, noun: str) -> FieldSpec:
    return FieldSpec(
        name,
        (name,),
        max_length=VEHICLE_NAME_MAX_LENGTH,
        overflow="truncate",
        truncate_warning=f"The vehicle {noun} name was too long and has been truncated.",
    )


PERMITS_PUSH = Endpoint(
    "permits/push",
    (
        # Specific codes first, in code order (9004 end, 9006 plate, 9007 start).
        _permit_time("end_time", ("endTime", "EndDateUtc"), required=True, code=9005),
        _permit_plate(("LicencePlate", "plate"), required=True),
        _permit_time("start_time", ("startTime", "StartDateUtc"), required=True, code=9007),
        _amount(("Amount", "amount")),
        _currency(("CurrencyID", "currency")),
        _text("permit_no", TICKET_NUMBER_MAX_LENGTH, "permitNo", "TicketNumber"),
        _text("zone", ZONE_MAX_LENGTH, "zone", "ParkingZoneName"),
        _text("promo_code", PROMO_CODE_MAX_LENGTH, "promoCode"),
    ),
)

PERMITS_UPDATE = Endpoint(
    "permits/update",
    (
        _REFERENCE_ID,
        _permit_time("end_time", ("endTime", "EndDateUtc"), required=False, code=9005),
        _permit_plate(("plate", "LicencePlate"), required=False),
        _amount(("Amount", "amount")),
        _currency(("currency", "CurrencyID")),
    ),
)

PERMITS_DELETE = Endpoint("permits/delete", (_REFERENCE_ID,))

PERMITS_STATS = Endpoint("permits/stats", (FieldSpec("zones", ("zones",), kind="zones"),))

VEHICLES_PUSH = Endpoint(
    "vehicles/push",
    (
        FieldSpec(
            "plate",
            ("plate",),
            required=True,
            max_length=VEHICLE_PLATE_MAX_LENGTH,
            required_code=9006,
            too_long_code=9021,
        ),
        FieldSpec("plate_type_id", ("plateTypeID",), kind="digits"),
        _text("plate_type", VEHICLE_NAME_MAX_LENGTH, "plateType"),
        FieldSpec("prov_id", ("provID",), kind="digits"),
        _text("prov", VEHICLE_NAME_MAX_LENGTH, "prov"),
        FieldSpec("make_id", ("makeID",), kind="digits"),
        _truncated("make", "make"),
        FieldSpec("type_id", ("typeID",), kind="digits"),
        _truncated("type", "type"),
        FieldSpec("colour_id", ("colourID",), kind="digits"),
        _truncated("colour", "colour"),
        FieldSpec("year", ("year",), kind="year"),
        _text("vin", VIN_MAX_LENGTH, "vin"),
    ),
    one_of=(
        OneOf(("plate_type_id", "plate_type"), 9010),
        OneOf(("prov_id", "prov"), 9011),
    ),
)

PROFILES_PUSH = Endpoint(
    "profiles/push",
    (
        _text("unique_id", NAME_MAX_LENGTH, required=True, required_code=9013),
        _text(
            "login_source",
            LOGIN_SOURCE_MAX_LENGTH,
            required=True,
            required_code=9014,
            too_long_code=9015,
        ),
        FieldSpec(
            "email",
            ("email",),
            kind="email",
            max_length=EMAIL_MAX_LENGTH,
            required_on_create=True,
            required_code=9016,
        ),
        _text("first_name", NAME_MAX_LENGTH, required_on_create=True, required_code=9017),
        _text("last_name", NAME_MAX_LENGTH, required_on_create=True, required_code=9018),
        _text("user_name", NAME_MAX_LENGTH),
        _text("street", None),
        _text("city", NAME_MAX_LENGTH),
        _province("province", "province", "state"),
        _text("postal_code", POSTAL_CODE_MAX_LENGTH, "postal_code", "zip"),
        _text("street2", STREET2_MAX_LENGTH),
        _text("city2", NAME_MAX_LENGTH),
        _province("province2", "province2", "state2"),
        _text("postal_code2", POSTAL_CODE_MAX_LENGTH, "postal_code2", "zip2"),
        _text("phone_cell", PHONE_MAX_LENGTH),
        FieldSpec("user_type_id", ("user_type_id",), kind="digits"),
        _text("employ_no", NUMBER_MAX_LENGTH),
        _text("employee_phone", NUMBER_MAX_LENGTH),
        _text("student_no", NUMBER_MAX_LENGTH),
        _text("student_phone", NUMBER_MAX_LENGTH),
        _text(
            "driver_licence_num",
            DRIVER_LICENCE_MAX_LENGTH,
            "driver_licence_num",
            "driver_license_num",
        ),
        FieldSpec("date_of_birth", ("date_of_birth",), kind="date", max_length=DATE_LENGTH),
        FieldSpec("locker_user_type_id", ("locker_user_type_id",), kind="digits"),
        _province("driver_licence_prov", "driver_licence_prov", "driver_license_state"),
    ),
)

PROFILES_TYPES_LIST = Endpoint("profiles/types/list", ())

VIOLATIONS_OVERDUE = Endpoint("violations/send_overdue_to_collections", ())

VALIDATE_PLATE = Endpoint(
    "validate/plate",
    (
        FieldSpec("client", ("client",), required=True, required_code=9000),
        FieldSpec("plate", ("plate",), required=True, required_code=9006),
    ),
    token_field="api_token",
    client_in_path=False,
)

ENDPOINTS: dict[str, Endpoint] = {
    ep.name: ep
    for ep in (
        PERMITS_PUSH,
        PERMITS_UPDATE,
        PERMITS_DELETE,
        PERMITS_STATS,
        VEHICLES_PUSH,
        PROFILES_PUSH,
        PROFILES_TYPES_LIST,
        VIOLATIONS_OVERDUE,
        VALIDATE_PLATE,
    )
}

# The names a token goes by, each endpoint's own (redacted wherever a body is shown).
TOKEN_FIELDS = frozenset(endpoint.token_field for endpoint in ENDPOINTS.values())


def normalize_currency(value: str) -> str | None:
    """A currency code as the permit endpoints take it: trimmed, in upper case, ``None``
    when blank; ContractError(9030) when longer than ``CURRENCY_MAX_LENGTH``."""
    spec = PERMITS_PUSH.field("currency")
    checked = _check_field(spec, {spec.wire_name: value}, lenient_times=False, warnings=[])
    return None if checked is None else str(checked)
