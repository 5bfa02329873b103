"""The OPS-COM Controller API contract: endpoints, field aliases, limits, error codes.

This module is the one source of truth for what the Controller accepts and answers
(vendor docs: ``shared/opscom-api/``). The gateway, the sandbox and the Controller
client all read it; every limit and every message is written here once. It imports
nothing from parkstream (stdlib only) and does no I/O.

What a caller may rely on::

    parse_body(raw, content_type)          bytes -> parsed JSON, or ContractError(9003)
    resolve_path(path)                     "/api/OC-TOMA/v1/permits/push" -> (Endpoint, client)
    ENDPOINTS[name].validate(body)         parsed JSON -> {canonical name: normalized value}
    ENDPOINTS[name].to_wire(fields)        normalized dict -> JSON body the Controller accepts
    ContractError(code).body()             {"ErrorCode": code, "ErrorMessage": "..."}

Normalized values: text is ``str`` (trimmed), amounts are ``Decimal`` with two places,
times are tz-aware UTC ``datetime`` (whole seconds), dates are ``date``, the stats
``zones`` list is a ``tuple[str, ...]``. Absent optional fields are absent from the
dict (never ``None``), so an update names only what it changes.

The decisions taken where the vendor docs are silent or contradict themselves are
recorded, with the doc lines they rest on, in ``docs/controller-contract.md``.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

__all__ = [
    "AMOUNT_MAX",
    "AMOUNT_MAX_LENGTH",
    "AMOUNT_MIN",
    "CURRENCY_MAX_LENGTH",
    "DOCUMENTED_CURRENCIES",
    "ENDPOINTS",
    "ERROR_HTTP_STATUS",
    "ERROR_MESSAGES",
    "PLATE_TIME_FORMAT",
    "TIME_FORMAT",
    "TIME_MAX_LENGTH",
    "TOKEN_FIELDS",
    "Checked",
    "ContractError",
    "Dntt",
    "Endpoint",
    "FieldSpec",
    "OneOf",
    "PlatePermit",
    "check_token_present",
    "format_time",
    "is_json_content_type",
    "normalize_client_code",
    "normalize_currency",
    "normalize_plate",
    "overdue_body",
    "parse_body",
    "parse_time",
    "permit_success_body",
    "plate_permits",
    "plate_validation_body",
    "profile_success_body",
    "redact_tokens",
    "resolve_path",
    "stats_body",
    "user_types_body",
    "vehicle_success_body",
]

# --------------------------------------------------------------------------- errors

ERROR_MESSAGES: dict[int, str] = {
    9000: "Client Code is missing from the request.",
    9001: "API Token is missing from the request.",
    9002: "The supplied API token does not have permission to perform that request.",
    9003: "Could not parse the request.",
    9004: "End Time is a required field.",
    9005: "The end time value is invalid.",
    9006: "Plate is a required field.",
    9007: "The start time value is invalid.",
    9008: (
        "Reference ID is required. On a new permit push, a reference id is returned. "
        "This is required for updates and deletes."
    ),
    9009: "Record not found.",
    9010: "The Plate Type is required.",
    9011: "The province or state is required.",
    9012: "The vehicle is already in the database.",
    9013: "A unique id is required.",
    9014: "The login source is required.",
    9015: "The login source is invalid.",
    9016: "The user e-mail is required.",
    9017: "The user's first name is required.",
    9018: "The user's last name is required.",
    9019: "The user's email address must be unique.",
    9020: "The user's username must be unique.",
    9021: "The vehicle's plate length exceeds 50 characters.",
    9022: "A record already exists with the supplied details.",
    9030: "The field's maximum number of characters was exceeded.",
    9031: "The field is required.",
    9032: "The field has a minimum number of characters.",
    9033: "The field's value is invalid.",
    9034: "The API Token does not exist for the specified client.",
}

# The docs show only the error body; the HTTP status is our decision (Laravel's
# conventions: 422 for field validation). Clients must classify by ErrorCode.
ERROR_HTTP_STATUS: dict[int, int] = {
    9000: 400,
    9001: 401,
    9002: 403,
    9003: 400,
    9004: 422,
    9005: 422,
    9006: 422,
    9007: 422,
    9008: 422,
    9009: 404,
    9010: 422,
    9011: 422,
    9012: 409,
    9013: 422,
    9014: 422,
    9015: 422,
    9016: 422,
    9017: 422,
    9018: 422,
    9019: 409,
    9020: 409,
    9021: 422,
    9022: 409,
    9030: 422,
    9031: 422,
    9032: 422,
    9033: 422,
    9034: 403,
}

MAX_LENGTH_EXCEEDED = 9030
REQUIRED = 9031
MIN_LENGTH = 9032
INVALID = 9033


class ContractError(Exception):
    """A request the Controller refuses, carrying the first documented error found.

    ``field`` is the canonical name of the offending field (None for whole-request
    errors); ``detail`` says why, for logs, and never contains the field's value.
    """

    def __init__(self, code: int, *, field: str | None = None, detail: str | None = None):
        if code not in ERROR_MESSAGES:
            raise ValueError(f"undocumented Controller error code {code!r}")
        self.code = code
        self.message = ERROR_MESSAGES[code]
        self.field = field
        self.detail = detail
        self.http_status = ERROR_HTTP_STATUS[code]
        where = f" field={field}" if field else ""
        why = f" ({detail})" if detail else ""
        super().__init__(f"{code} {self.message}{where}{why}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.code, self.field, self.detail))

    def body(self) -> dict[str, Any]:
        """The documented error body: ``{"ErrorCode": code, "ErrorMessage": message}``."""
        return {"ErrorCode": self.code, "ErrorMessage": self.message}


def _rebuild_error(code: int, field: str | None, detail: str | None) -> ContractError:
    return ContractError(code, field=field, detail=detail)


# --------------------------------------------------------------------------- limits

TOKEN_FIELDS = frozenset({"apiToken", "api_token"})
TOKEN_MAX_LENGTH = 50
AMOUNT_MIN = Decimal("0.01")
AMOUNT_MAX = Decimal("999999.99")
AMOUNT_MAX_LENGTH = 9
# The currencies the docs name (*"(Optional) CAD, USD"*, *"Supported defaults include CAD or
# USD"*): examples, not a limit. A currency is any text of at most CURRENCY_MAX_LENGTH
# characters (docs/controller-contract.md, decision 18).
DOCUMENTED_CURRENCIES = ("CAD", "USD")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # PHP Y-m-d\TH:i:s, always UTC on the wire
TIME_MAX_LENGTH = 20
PLATE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # validate/plate "expires", "start", "end"
PERMIT_PLATE_MAX_LENGTH = 25
VEHICLE_PLATE_MAX_LENGTH = 50
REFERENCE_ID_MAX_LENGTH = 50
TICKET_NUMBER_MAX_LENGTH = 50
PROMO_CODE_MAX_LENGTH = 50
ZONE_MAX_LENGTH = 200
CURRENCY_MAX_LENGTH = 10
VEHICLE_NAME_MAX_LENGTH = 50
VIN_MAX_LENGTH = 25
LOGIN_SOURCE_MAX_LENGTH = 20
NAME_MAX_LENGTH = 50
EMAIL_MAX_LENGTH = 100
POSTAL_CODE_MAX_LENGTH = 20
STREET2_MAX_LENGTH = 20
PHONE_MAX_LENGTH = 20
NUMBER_MAX_LENGTH = 50
DRIVER_LICENCE_MAX_LENGTH = 255
PROVINCE_CODE_LENGTH = 2
DATE_LENGTH = 10

# PHP's trim() set: Laravel's TrimStrings middleware trims every input string.
_PHP_WHITESPACE = " \t\n\r\0\x0b"

_STRICT_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})")
_LENIENT_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.[0-9]{1,9})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?"
)
_PLATE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_AMOUNT = re.compile(r"[0-9]+\.[0-9]{2}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_YEAR = re.compile(r"[0-9]{4}")
_DIGITS = re.compile(r"[0-9]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LETTERS2 = re.compile(r"[A-Za-z]{2}")

# --------------------------------------------------------------------------- fields

KINDS = frozenset(
    {
        "text",
        "amount",
        "currency",
        "datetime",
        "date",
        "year",
        "digits",
        "email",
        "province",
        "zones",
    }
)
# Currency codes are sent in upper case (ASCII letters only, so the length stays the same).
_CURRENCY_CASE = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


@dataclass(frozen=True)
class FieldSpec:
    """One documented request attribute.

    ``aliases`` are the documented "Possible Names", exact case; ``aliases[0]`` is the
    name parkstream sends (the one in the docs' example request) and, when a body
    carries several aliases, the first non-empty one in this order wins.
    ``required_on_create`` fields are required only when the record is new (profiles).
    ``overflow="truncate"`` fields are cut to ``max_length`` with ``truncate_warning``
    instead of refused (documented for the vehicle colour).
    """

    name: str
    aliases: tuple[str, ...]
    kind: str = "text"
    required: bool = False
    max_length: int | None = None
    min_length: int | None = None
    choices: tuple[str, ...] | None = None
    required_code: int = REQUIRED
    invalid_code: int = INVALID
    too_long_code: int = MAX_LENGTH_EXCEEDED
    too_short_code: int = MIN_LENGTH
    required_on_create: bool = False
    overflow: str = "error"
    truncate_warning: str | None = None

    def __post_init__(self) -> None:
        if not self.aliases:
            raise ValueError(f"field {self.name} needs at least one documented name")
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")
        if self.overflow not in ("error", "truncate"):
            raise ValueError(f"field {self.name}: overflow must be 'error' or 'truncate'")

    @property
    def wire_name(self) -> str:
        """The name parkstream sends to the Controller."""
        return self.aliases[0]


@dataclass(frozen=True)
class OneOf:
    """At least one of ``names`` (canonical) must be present, else ``code``."""

    names: tuple[str, ...]
    code: int


@dataclass(frozen=True)
class Checked:
    """The outcome of :meth:`Endpoint.check`: normalized fields plus truncation warnings."""

    fields: dict[str, Any]
    warnings: tuple[str, ...] = ()


def _php_trim(value: str) -> str:
    return value.strip(_PHP_WHITESPACE)


def _present(value: object) -> bool:
    """Laravel's ConvertEmptyStringsToNull: null, "" and all-blank strings are absent."""
    if value is None:
        return False
    return not (isinstance(value, str) and not _php_trim(value))


def _calendar_datetime(groups: Sequence[str]) -> datetime:
    year, month, day, hour, minute, second = (int(g) for g in groups[:6])
    return datetime(year, month, day, hour, minute, second)


def parse_time(value: str, *, lenient: bool = False) -> datetime:
    """Parse a Controller time to an aware UTC datetime (whole seconds).

    Strict: exactly ``Y-m-d\\TH:i:s`` (19 characters, a real calendar instant, read as
    UTC). Lenient (parkstream's gateway): also fractional seconds and an offset
    (``Z``, ``+HH:MM``, ``-HHMM``), converted to UTC. Raises ValueError otherwise.
    """
    pattern = _LENIENT_TIME if lenient else _STRICT_TIME
    match = pattern.fullmatch(value)
    if match is None:
        raise ValueError("time is not Y-m-d\\TH:i:s")
    naive = _calendar_datetime(match.groups())
    offset = match.group(7) if lenient else None
    if offset is None or offset in ("Z", "z"):
        return naive.replace(tzinfo=UTC)
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return naive.replace(tzinfo=tz).astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("time out of range once converted to UTC") from exc


def format_time(value: datetime) -> str:
    """An aware datetime as the Controller's ``Y-m-d\\TH:i:s`` in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("Controller times must be timezone-aware")
    utc = value.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )


def _format_amount(value: object) -> str:
    if isinstance(value, float | bool):
        raise TypeError("amounts are Decimal, never float")
    if not isinstance(value, Decimal | int | str):
        raise TypeError(f"amount must be Decimal, not {type(value).__name__}")
    try:
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise InvalidOperation
        amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is not a finite decimal") from None
    return f"{amount:.2f}"


def _normalize(spec: FieldSpec, text: str, *, lenient_times: bool) -> Any:
    """The kind-specific part of a field check; ``text`` is trimmed and length-checked."""
    kind = spec.kind
    if kind == "text":
        if spec.choices is not None:
            for choice in spec.choices:
                if text.upper() == choice.upper():
                    return choice
            raise ContractError(spec.invalid_code, field=spec.name, detail="not a listed value")
        return text
    if kind == "currency":
        return text.translate(_CURRENCY_CASE)
    if kind == "amount":
        if _AMOUNT.fullmatch(text) is None:
            raise ContractError(
                spec.invalid_code, field=spec.name, detail="not digits with two penny digits"
            )
        amount = Decimal(text)
        if not AMOUNT_MIN <= amount <= AMOUNT_MAX:
            raise ContractError(spec.invalid_code, field=spec.name, detail="amount out of range")
        return amount
    if kind == "datetime":
        try:
            return parse_time(text, lenient=lenient_times)
        except ValueError as exc:
            raise ContractError(spec.invalid_code, field=spec.name, detail=str(exc)) from None
    if kind == "date":
        match = _DATE.fullmatch(text)
        try:
            if match is None:
                raise ValueError("not yyyy-mm-dd")
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            raise ContractError(spec.invalid_code, field=spec.name, detail="not a date") from None
    regex = {
        "year": _YEAR,
        "digits": _DIGITS,
        "email": _EMAIL,
        "province": _LETTERS2,
    }.get(kind)
    if regex is not None:
        if regex.fullmatch(text) is None:
            raise ContractError(spec.invalid_code, field=spec.name, detail=f"not a valid {kind}")
        return text
    if kind == "zones":
        zones = tuple(z for z in (_php_trim(part) for part in text.split(",")) if z)
        return zones or None
    raise AssertionError(f"unhandled kind {kind}")  # pragma: no cover - KINDS is closed


def _check_field(
    spec: FieldSpec, body: Mapping[str, Any], *, lenient_times: bool, warnings: list[str]
) -> Any:
    """Return the normalized value of ``spec`` in ``body`` (None when absent) or raise."""
    raw: object = None
    for alias in spec.aliases:
        candidate = body.get(alias)
        if _present(candidate):
            raw = candidate
            break
    if raw is None:
        if spec.required:
            raise ContractError(spec.required_code, field=spec.name, detail="missing")
        return None
    if not isinstance(raw, str):
        raise ContractError(
            spec.invalid_code, field=spec.name, detail=f"JSON {type(raw).__name__}, not string"
        )
    if _SURROGATE.search(raw):
        raise ContractError(spec.invalid_code, field=spec.name, detail="not valid Unicode")
    text = _php_trim(raw)
    # A time's format fixes its length (19); the documented 20 is the column size.
    if spec.kind != "datetime" and spec.max_length is not None and len(text) > spec.max_length:
        if spec.overflow == "truncate":
            text = _php_trim(text[: spec.max_length])
            if spec.truncate_warning:
                warnings.append(spec.truncate_warning)
        else:
            raise ContractError(
                spec.too_long_code, field=spec.name, detail=f"longer than {spec.max_length}"
            )
    if spec.min_length is not None and len(text) < spec.min_length:
        raise ContractError(
            spec.too_short_code, field=spec.name, detail=f"shorter than {spec.min_length}"
        )
    return _normalize(spec, text, lenient_times=lenient_times)


def check_token_present(body: object, token_field: str = "apiToken") -> str:
    """Return the request's API token; 9003 if the body is not an object, 9001 if absent.

    A token that is not a JSON string can never match a real token: 9002.
    """
    if not isinstance(body, dict):
        raise ContractError(9003, detail="body is not a JSON object")
    value = body.get(token_field)
    if not _present(value):
        raise ContractError(9001, field=token_field)
    if not isinstance(value, str) or _SURROGATE.search(value):
        raise ContractError(9002, field=token_field, detail="token is not a valid string")
    return _php_trim(value)


# --------------------------------------------------------------------------- endpoints


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
        if not isinstance(body, dict):
            raise ContractError(9003, detail="body is not a JSON object")
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
        if not isinstance(body, dict):
            raise ContractError(9003, detail="body is not a JSON object")
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

# --------------------------------------------------------------------------- requests


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


def normalize_currency(value: str) -> str | None:
    """A currency code as the permit endpoints take it: trimmed, in upper case, ``None``
    when blank; ContractError(9030) when longer than ``CURRENCY_MAX_LENGTH``."""
    spec = PERMITS_PUSH.field("currency")
    checked = _check_field(spec, {spec.wire_name: value}, lenient_times=False, warnings=[])
    return None if checked is None else str(checked)


def normalize_plate(plate: str) -> str:
    """A plate as enforcement matches it: upper case, letters and digits only."""
    return "".join(ch for ch in plate.upper() if ch.isalnum())


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


# --------------------------------------------------------------------------- answers


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
    # Written out by hand: strftime("%Y") does not zero-pad years below 1000.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f" {value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )


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
