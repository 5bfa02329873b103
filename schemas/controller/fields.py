"""The Controller's fields: limits, FieldSpec, and how one value is read and written.

Limits are the documented lengths and ranges (``*_MAX_LENGTH``, ``AMOUNT_MIN``...) and
the time formats. ``FieldSpec`` is one documented request attribute (aliases, kind,
limits, the code of each refusal); ``OneOf`` and ``Checked`` are what an endpoint's
check is made of. The functions read a value as Laravel would (PHP's trim, empty is
absent), check it against its spec and normalize it (``parse_time``, ``_check_field``,
``check_token_present``; a body that is no JSON object is 9003), write it back for the
wire (``format_time``, ``_format_amount``) and normalize plates for matching.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from schemas.controller.errors import (
    INVALID,
    MAX_LENGTH_EXCEEDED,
    MIN_LENGTH,
    REQUIRED,
    ContractError,
)

# --------------------------------------------------------------------------- limits

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

# Every Controller date and time is made of these two (Y-m-d, H:i:s), one group a number.
_DATE_PART = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_CLOCK_PART = r"([0-9]{2}):([0-9]{2}):([0-9]{2})"
_STRICT_TIME = re.compile(f"{_DATE_PART}T{_CLOCK_PART}")
_LENIENT_TIME = re.compile(_STRICT_TIME.pattern + r"(?:\.[0-9]{1,9})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?")
_PLATE_TIME = re.compile(f"{_DATE_PART} {_CLOCK_PART}")
_AMOUNT = re.compile(r"[0-9]+\.[0-9]{2}")
_DATE = re.compile(_DATE_PART)
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


def _calendar_text(value: datetime, separator: str) -> str:
    """``value``'s own date and clock as ``Y-m-d``, ``separator``, ``H:i:s`` (no zone)."""
    # Written out by hand: strftime("%Y") does not zero-pad years below 1000.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"{separator}{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )


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
    return _calendar_text(value.astimezone(UTC), "T")


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


def _json_object(body: object) -> dict[str, Any]:
    """``body`` (parsed JSON) if it is an object, as every request body must be; else 9003."""
    if not isinstance(body, dict):
        raise ContractError(9003, detail="body is not a JSON object")
    return body


def check_token_present(body: object, token_field: str = "apiToken") -> str:
    """Return the request's API token; 9003 if the body is not an object, 9001 if absent.

    A token that is not a JSON string can never match a real token: 9002.
    """
    value = _json_object(body).get(token_field)
    if not _present(value):
        raise ContractError(9001, field=token_field)
    if not isinstance(value, str) or _SURROGATE.search(value):
        raise ContractError(9002, field=token_field, detail="token is not a valid string")
    return _php_trim(value)


def normalize_plate(plate: str) -> str:
    """A plate as enforcement matches it: upper case, letters and digits only."""
    return "".join(ch for ch in plate.upper() if ch.isalnum())
