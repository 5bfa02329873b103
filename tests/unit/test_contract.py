"""The Controller contract (schemas/controller/) against the vendor docs.

Every documented example request validates to its canonical values; every error code a
request alone can provoke is provoked, with its exact message. Codes that need stored
records (9009, 9012, 9019, 9020, 9022) or a known token (9002 wrong value, 9034) are
covered against the sandbox in tests/integration/test_sandbox.py.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.controller import (
    AMOUNT_MAX,
    AMOUNT_MIN,
    ENDPOINTS,
    ERROR_HTTP_STATUS,
    ERROR_MESSAGES,
    ContractError,
    Dntt,
    FieldSpec,
    PlatePermit,
    check_token_present,
    format_time,
    normalize_client_code,
    normalize_plate,
    parse_body,
    parse_time,
    permit_success_body,
    plate_permits,
    plate_validation_body,
    redact_tokens,
    resolve_path,
    stats_body,
    vehicle_success_body,
)
from tests.support.examples import PERMIT_PUSH_EXAMPLE, PROFILE_PUSH_EXAMPLE, VEHICLE_PUSH_EXAMPLE

TOKEN = "YOUR-API-TOKEN"
T0900 = datetime(2018, 7, 2, 9, 0, tzinfo=UTC)
T0930 = datetime(2018, 7, 2, 9, 30, tzinfo=UTC)

# ------------------------------------------------------------------ documented examples

PUSH_EXAMPLE = {"apiToken": TOKEN, **PERMIT_PUSH_EXAMPLE}
PUSH_CANONICAL = {
    "amount": Decimal("14.50"),
    "currency": "CAD",
    "plate": "PL8RDR",
    "zone": "Lot 4",
    "permit_no": "L4-1138",
    "start_time": T0900,
    "end_time": T0930,
}
SETUP_GUIDE_EXAMPLE = {**PUSH_EXAMPLE, "promoCode": "DISCOUNT20"}
UPDATE_EXAMPLE = {
    "apiToken": TOKEN,
    "referenceID": "PREVIOUS-REFERENCE-ID",
    "plate": "PL8RDR",
    "Amount": "14.50",
    "currency": "CAD",
    "endTime": "2018-07-02T09:30:00",
}
DELETE_EXAMPLE = {"apiToken": TOKEN, "referenceID": "PREVIOUS-REFERENCE-ID"}
STATS_RAW_EXAMPLE = {"apiToken": TOKEN, "zones": "NOT-REQUIRED--LIST-OF-ZONES"}
STATS_JS_EXAMPLE = {"apiToken": TOKEN, "zones": "Lot 01,Lot 02"}
VEHICLE_RAW_EXAMPLE = {
    "apiToken": TOKEN,
    "plate": "PL8RDR",
    "plateType": "Motorcycle",
    "prov": "MA",
    "make": "8",
    "type": "3",
    "colour": "red",
    "year": "2011",
    "vin": "8GKS1AKC7FR518845",
}
VEHICLE_JS_EXAMPLE = {"apiToken": TOKEN, **VEHICLE_PUSH_EXAMPLE}
PROFILE_EXAMPLE = {"apiToken": TOKEN, **PROFILE_PUSH_EXAMPLE}
PROFILE_CANONICAL = {
    "unique_id": "tester23",
    "login_source": "OPSCOM",
    "first_name": "firstname",
    "last_name": "lastname",
    "user_name": "username",
    "email": "test@test.com",
    "street": PROFILE_EXAMPLE["street"],
    "city": "Everywhere",
    "province": "bc",  # first documented name wins over "state"
    "postal_code": "HOHOHO",
    "street2": "123 General Street",
    "city2": "Somewhere",
    "province2": "AB",
    "postal_code2": "A9A9A9",
    "phone_cell": "613-555-1212",
    "user_type_id": "6",
    "employ_no": "employee number: default",
    "employee_phone": "emp ph. klondike 555",
    "student_no": "SN 543209854",
    "student_phone": "999",
    "driver_licence_num": "QC 99999999",
    "date_of_birth": date(1901, 1, 31),
    "locker_user_type_id": "3",
    "driver_licence_prov": "BC",
}
PLATE_EXAMPLE = {"api_token": TOKEN, "client": "<client ID>", "plate": "<plate to validate>"}

DOCUMENTED_EXAMPLES = [
    pytest.param("permits/push", PUSH_EXAMPLE, PUSH_CANONICAL, id="permit-create"),
    pytest.param(
        "permits/push",
        SETUP_GUIDE_EXAMPLE,
        {**PUSH_CANONICAL, "promo_code": "DISCOUNT20"},
        id="permit-create-with-setup",
    ),
    pytest.param(
        "permits/update",
        UPDATE_EXAMPLE,
        {
            "reference_id": "PREVIOUS-REFERENCE-ID",
            "plate": "PL8RDR",
            "amount": Decimal("14.50"),
            "currency": "CAD",
            "end_time": T0930,
        },
        id="permit-update",
    ),
    pytest.param(
        "permits/delete",
        DELETE_EXAMPLE,
        {"reference_id": "PREVIOUS-REFERENCE-ID"},
        id="permit-delete",
    ),
    pytest.param(
        "permits/stats",
        STATS_RAW_EXAMPLE,
        {"zones": ("NOT-REQUIRED--LIST-OF-ZONES",)},
        id="permit-stats-raw",
    ),
    pytest.param(
        "permits/stats", STATS_JS_EXAMPLE, {"zones": ("Lot 01", "Lot 02")}, id="permit-stats-js"
    ),
    pytest.param(
        "vehicles/push",
        VEHICLE_RAW_EXAMPLE,
        {
            "plate": "PL8RDR",
            "plate_type": "Motorcycle",
            "prov": "MA",
            "make": "8",
            "type": "3",
            "colour": "red",
            "year": "2011",
            "vin": "8GKS1AKC7FR518845",
        },
        id="vehicle-create-raw",
    ),
    pytest.param(
        "vehicles/push",
        VEHICLE_JS_EXAMPLE,
        {
            "plate": "PL8RDR",
            "plate_type": "Motorcycle",
            "prov": "MA",
            "make": "kia",
            "type": "commercial",
            "colour": "red",
            "year": "2021",
            "vin": "8GKS1AKC7FR518845",
        },
        id="vehicle-create-js",
    ),
    pytest.param("profiles/push", PROFILE_EXAMPLE, PROFILE_CANONICAL, id="user-create"),
    pytest.param("profiles/types/list", {"apiToken": TOKEN}, {}, id="user-types"),
    pytest.param(
        "violations/send_overdue_to_collections", {"apiToken": TOKEN}, {}, id="overdue-violations"
    ),
    pytest.param(
        "validate/plate",
        PLATE_EXAMPLE,
        {"client": "<client ID>", "plate": "<plate to validate>"},
        id="plate-validation",
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "canonical"), DOCUMENTED_EXAMPLES)
def test_documented_example_validates_to_documented_values(
    endpoint: str, body: dict[str, Any], canonical: dict[str, Any]
) -> None:
    assert ENDPOINTS[endpoint].validate(body) == canonical


@pytest.mark.parametrize(("endpoint", "body", "canonical"), DOCUMENTED_EXAMPLES)
def test_documented_example_round_trips_through_the_wire(
    endpoint: str, body: dict[str, Any], canonical: dict[str, Any]
) -> None:
    ep = ENDPOINTS[endpoint]
    wire = ep.to_wire(ep.validate(body))
    assert ep.validate(wire, require_token=False) == ep.validate(body)


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("permits/push", PUSH_EXAMPLE),
        ("permits/update", UPDATE_EXAMPLE),
        ("permits/delete", DELETE_EXAMPLE),
        ("vehicles/push", VEHICLE_JS_EXAMPLE),
        ("validate/plate", PLATE_EXAMPLE),
    ],
)
def test_wire_names_are_the_names_of_the_documented_example(
    endpoint: str, body: dict[str, Any]
) -> None:
    ep = ENDPOINTS[endpoint]
    expected = {k: v for k, v in body.items() if k != ep.token_field}
    assert ep.to_wire(ep.validate(body)) == expected


def test_raw_overdue_example_with_trailing_comma_is_not_json() -> None:
    with pytest.raises(ContractError) as caught:
        parse_body(b'{ "apiToken": "YOUR-API-TOKEN",}', "application/json")
    assert caught.value.code == 9003


def test_error_table_is_the_documented_table() -> None:
    assert ERROR_MESSAGES == {
        9000: "Client Code is missing from the request.",
        9001: "API Token is missing from the request.",
        9002: "The supplied API token does not have permission to perform that request.",
        9003: "Could not parse the request.",
        9004: "End Time is a required field.",
        9005: "The end time value is invalid.",
        9006: "Plate is a required field.",
        9007: "The start time value is invalid.",
        9008: "Reference ID is required. On a new permit push, a reference id is returned. "
        "This is required for updates and deletes.",
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
    assert set(ERROR_HTTP_STATUS) == set(ERROR_MESSAGES)


def test_error_body_is_the_documented_shape() -> None:
    error = ContractError(9001)
    assert error.body() == {
        "ErrorCode": 9001,
        "ErrorMessage": "API Token is missing from the request.",
    }
    assert error.http_status == 401


def test_undocumented_error_code_cannot_be_raised() -> None:
    with pytest.raises(ValueError):
        ContractError(9023)


# ------------------------------------------------------------------ errors, one row each

PUSH_MIN = {
    "apiToken": TOKEN,
    "LicencePlate": "PL8RDR",
    "startTime": "2018-07-02T09:00:00",
    "endTime": "2018-07-02T09:30:00",
}
VEHICLE_MIN = {"apiToken": TOKEN, "plate": "PL8RDR", "plateType": "Motorcycle", "prov": "MA"}
PROFILE_MIN = {"apiToken": TOKEN, "unique_id": "u1", "login_source": "OPSCOM"}
MIN_BODIES: dict[str, dict[str, Any]] = {
    "permits/push": PUSH_MIN,
    "permits/update": DELETE_EXAMPLE,
    "permits/delete": DELETE_EXAMPLE,
    "permits/stats": {"apiToken": TOKEN},
    "vehicles/push": VEHICLE_MIN,
    "profiles/push": PROFILE_MIN,
    "profiles/types/list": {"apiToken": TOKEN},
    "violations/send_overdue_to_collections": {"apiToken": TOKEN},
    "validate/plate": {"api_token": TOKEN, "client": "OC-TOMA", "plate": "PL8RDR"},
}


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


ERROR_CASES = [
    # (id, endpoint, body, code, field)
    ("plate-client-missing", "validate/plate", _without(MIN_BODIES["validate/plate"], "client"),
     9000, "client"),
    ("token-missing", "permits/push", _without(PUSH_MIN, "apiToken"), 9001, "apiToken"),
    ("token-empty", "permits/push", {**PUSH_MIN, "apiToken": ""}, 9001, "apiToken"),
    ("token-blank", "permits/push", {**PUSH_MIN, "apiToken": "  \t"}, 9001, "apiToken"),
    ("token-null", "permits/stats", {"apiToken": None}, 9001, "apiToken"),
    ("plate-token-missing", "validate/plate", _without(MIN_BODIES["validate/plate"], "api_token"),
     9001, "api_token"),
    ("token-camel-on-plate", "validate/plate",
     {"apiToken": TOKEN, "client": "OC-TOMA", "plate": "X"}, 9001, "api_token"),
    ("token-number", "permits/stats", {"apiToken": 12345}, 9002, "apiToken"),
    ("body-list", "permits/push", [PUSH_MIN], 9003, None),
    ("body-string", "permits/push", "PL8RDR", 9003, None),
    ("body-null", "permits/push", None, 9003, None),
    ("body-number", "permits/stats", 42, 9003, None),
    ("end-missing", "permits/push", _without(PUSH_MIN, "endTime"), 9004, "end_time"),
    ("end-space-separator", "permits/push", {**PUSH_MIN, "endTime": "2018-07-02 09:30:00"},
     9005, "end_time"),
    ("end-before-start", "permits/push", {**PUSH_MIN, "endTime": "2018-07-02T08:59:59"},
     9005, "end_time"),
    ("end-not-a-date", "permits/push", {**PUSH_MIN, "endTime": "2018-02-30T09:30:00"},
     9005, "end_time"),
    ("end-number", "permits/push", {**PUSH_MIN, "endTime": 1530523800}, 9005, "end_time"),
    ("update-end-invalid", "permits/update", {**DELETE_EXAMPLE, "endTime": "tomorrow"},
     9005, "end_time"),
    ("plate-missing", "permits/push", _without(PUSH_MIN, "LicencePlate"), 9006, "plate"),
    ("plate-blank", "permits/push", {**PUSH_MIN, "LicencePlate": "   "}, 9006, "plate"),
    ("vehicle-plate-missing", "vehicles/push", _without(VEHICLE_MIN, "plate"), 9006, "plate"),
    ("validate-plate-missing", "validate/plate", _without(MIN_BODIES["validate/plate"], "plate"),
     9006, "plate"),
    ("start-missing", "permits/push", _without(PUSH_MIN, "startTime"), 9007, "start_time"),
    ("start-us-format", "permits/push", {**PUSH_MIN, "startTime": "07/02/2018 09:00"},
     9007, "start_time"),
    ("start-offset-strict", "permits/push", {**PUSH_MIN, "startTime": "2018-07-02T09:00:00Z"},
     9007, "start_time"),
    ("start-no-seconds", "permits/push", {**PUSH_MIN, "startTime": "2018-07-02T09:00"},
     9007, "start_time"),
    ("reference-missing-update", "permits/update", {"apiToken": TOKEN, "plate": "X"},
     9008, "reference_id"),
    ("reference-missing-delete", "permits/delete", {"apiToken": TOKEN}, 9008, "reference_id"),
    ("plate-type-missing", "vehicles/push", _without(VEHICLE_MIN, "plateType"), 9010,
     "plate_type_id"),
    ("province-missing", "vehicles/push", _without(VEHICLE_MIN, "prov"), 9011, "prov_id"),
    ("unique-id-missing", "profiles/push", _without(PROFILE_MIN, "unique_id"), 9013,
     "unique_id"),
    ("login-source-missing", "profiles/push", _without(PROFILE_MIN, "login_source"), 9014,
     "login_source"),
    ("login-source-too-long", "profiles/push", {**PROFILE_MIN, "login_source": "S" * 21},
     9015, "login_source"),
    ("vehicle-plate-51", "vehicles/push", {**VEHICLE_MIN, "plate": "P" * 51}, 9021, "plate"),
    ("permit-plate-26", "permits/push", {**PUSH_MIN, "LicencePlate": "P" * 26}, 9030, "plate"),
    ("zone-201", "permits/push", {**PUSH_MIN, "zone": "Z" * 201}, 9030, "zone"),
    ("ticket-51", "permits/push", {**PUSH_MIN, "TicketNumber": "T" * 51}, 9030, "permit_no"),
    ("reference-51", "permits/delete", {**DELETE_EXAMPLE, "referenceID": "r" * 51}, 9030,
     "reference_id"),
    ("amount-10-chars", "permits/push", {**PUSH_MIN, "Amount": "1000000.00"}, 9030, "amount"),
    ("currency-11", "permits/push", {**PUSH_MIN, "CurrencyID": "C" * 11}, 9030, "currency"),
    ("vin-26", "vehicles/push", {**VEHICLE_MIN, "vin": "V" * 26}, 9030, "vin"),
    ("province-3", "profiles/push", {**PROFILE_MIN, "province": "ONT"}, 9030, "province"),
    ("province-1", "profiles/push", {**PROFILE_MIN, "state": "O"}, 9032, "province"),
    ("licence-state-1", "profiles/push", {**PROFILE_MIN, "driver_license_state": "Q"}, 9032,
     "driver_licence_prov"),
    ("amount-one-penny-digit", "permits/push", {**PUSH_MIN, "Amount": "14.5"}, 9033, "amount"),
    ("amount-no-pennies", "permits/push", {**PUSH_MIN, "amount": "14"}, 9033, "amount"),
    ("amount-zero", "permits/push", {**PUSH_MIN, "Amount": "0.00"}, 9033, "amount"),
    ("amount-negative", "permits/push", {**PUSH_MIN, "Amount": "-1.00"}, 9033, "amount"),
    ("amount-json-number", "permits/push", {**PUSH_MIN, "Amount": 14.5}, 9033, "amount"),
    ("amount-dollar-sign", "permits/push", {**PUSH_MIN, "Amount": "$14.50"}, 9033, "amount"),
    ("currency-number", "permits/push", {**PUSH_MIN, "currency": 978}, 9033, "currency"),
    ("plate-number", "permits/push", {**PUSH_MIN, "LicencePlate": 123456}, 9033, "plate"),
    ("plate-object", "permits/push", {**PUSH_MIN, "LicencePlate": {"v": "X"}}, 9033, "plate"),
    ("plate-list", "vehicles/push", {**VEHICLE_MIN, "plate": ["PL8RDR"]}, 9033, "plate"),
    ("zone-bool", "permits/push", {**PUSH_MIN, "zone": True}, 9033, "zone"),
    ("plate-lone-surrogate", "permits/push", {**PUSH_MIN, "LicencePlate": "\ud800"}, 9033,
     "plate"),
    ("token-lone-surrogate", "permits/stats", {"apiToken": "t\udfff"}, 9002, "apiToken"),
    ("zones-list", "permits/stats", {"apiToken": TOKEN, "zones": ["Lot 01"]}, 9033, "zones"),
    ("email-no-at", "profiles/push", {**PROFILE_MIN, "email": "test.test.com"}, 9033, "email"),
    ("email-101", "profiles/push", {**PROFILE_MIN, "email": "a" * 92 + "@test.com"}, 9030,
     "email"),
    ("year-two-digits", "vehicles/push", {**VEHICLE_MIN, "year": "21"}, 9033, "year"),
    ("plate-type-id-letters", "vehicles/push", {**VEHICLE_MIN, "plateTypeID": "four"}, 9033,
     "plate_type_id"),
    ("dob-not-a-date", "profiles/push", {**PROFILE_MIN, "date_of_birth": "1901-02-30"}, 9033,
     "date_of_birth"),
    ("dob-slashes", "profiles/push", {**PROFILE_MIN, "date_of_birth": "1901/01/31"}, 9033,
     "date_of_birth"),
    ("province-digits", "profiles/push", {**PROFILE_MIN, "province": "12"}, 9033, "province"),
    ("user-type-id-letters", "profiles/push", {**PROFILE_MIN, "user_type_id": "six"}, 9033,
     "user_type_id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("endpoint", "body", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_request_provokes_documented_error(
    endpoint: str, body: Any, code: int, field: str | None
) -> None:
    with pytest.raises(ContractError) as caught:
        ENDPOINTS[endpoint].validate(body)
    assert (caught.value.code, caught.value.field) == (code, field)
    assert caught.value.message == ERROR_MESSAGES[code]
    assert caught.value.body() == {"ErrorCode": code, "ErrorMessage": ERROR_MESSAGES[code]}


@pytest.mark.parametrize(
    ("missing", "code"), [("email", 9016), ("first_name", 9017), ("last_name", 9018)]
)
def test_new_profile_requires_email_and_names(missing: str, code: int) -> None:
    fields = ENDPOINTS["profiles/push"].validate(PROFILE_EXAMPLE)
    del fields[missing]
    with pytest.raises(ContractError) as caught:
        ENDPOINTS["profiles/push"].check_create(fields)
    assert caught.value.code == code


def test_existing_profile_update_needs_no_email_or_names() -> None:
    assert ENDPOINTS["profiles/push"].validate(PROFILE_MIN) == {
        "unique_id": "u1",
        "login_source": "OPSCOM",
    }


@pytest.mark.parametrize(
    ("path", "endpoint", "client"),
    [
        ("/api/OC-TOMA/v1/permits/push", "permits/push", "OC-TOMA"),
        ("/api/OC_TOMA/v1/vehicles/push", "vehicles/push", "OC_TOMA"),
        ("/api/OC_TOMA/v1/profiles/types/list", "profiles/types/list", "OC_TOMA"),
        (
            "/api/OC_TOMA/v1/violations/send_overdue_to_collections/",
            "violations/send_overdue_to_collections",
            "OC_TOMA",
        ),
        ("/api/v1/validate/plate", "validate/plate", None),
    ],
)
def test_path_resolves_to_endpoint_and_client(path: str, endpoint: str, client: str | None) -> None:
    ep, found_client = resolve_path(path)
    assert (ep.name, found_client) == (endpoint, client)
    if client is not None:
        assert ep.path(client) == path.rstrip("/")


@pytest.mark.parametrize("path", ["/api/v1/permits/push", "/api//v1/permits/update"])
def test_path_without_client_code_is_9000(path: str) -> None:
    with pytest.raises(ContractError) as caught:
        resolve_path(path)
    assert caught.value.code == 9000


@pytest.mark.parametrize(
    "path", ["/api/OC-TOMA/v1/permits/create", "/api/OC-TOMA/v1/validate/plate", "/healthz", "/"]
)
def test_undocumented_path_is_not_an_endpoint(path: str) -> None:
    with pytest.raises(LookupError):
        resolve_path(path)


def test_validate_plate_path_has_no_client_code() -> None:
    assert ENDPOINTS["validate/plate"].path("OC-TOMA") == "/api/v1/validate/plate"


def test_client_codes_compare_case_blind_with_dash_and_underscore_alike() -> None:
    assert normalize_client_code("oc_toma") == normalize_client_code("OC-TOMA")


# ------------------------------------------------------------------ request parsing


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"", "application/json"),
        (b"   ", "application/json"),
        (b"not json", "application/json"),
        (b'{"apiToken": ', "application/json"),
        (b'{"Amount": NaN}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b'{"apiToken": "x"}', "text/plain"),
        (b'{"apiToken": "x"}', "application/x-www-form-urlencoded"),
        (b'{"apiToken": "x"}', None),
        (b"[" * 100_000, "application/json"),
        (b'{"apiToken": "x", "LicencePlate": "\\ud800"}', "application/json"),
        (b'{"\\udfff": "x"}', "application/json"),
    ],
)
def test_unparseable_request_is_9003(raw: bytes, content_type: str | None) -> None:
    with pytest.raises(ContractError) as caught:
        parse_body(raw, content_type)
    assert caught.value.code == 9003


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd+json"]
)
def test_json_content_types_parse(content_type: str) -> None:
    assert parse_body(b'{"apiToken": "x"}', content_type) == {"apiToken": "x"}


@pytest.mark.parametrize(
    ("key", "endpoint", "body"),
    [
        ("LicensePlate", "permits/push", _without(PUSH_MIN, "LicencePlate")),
        ("licenceplate", "permits/push", _without(PUSH_MIN, "LicencePlate")),
        ("Plate", "vehicles/push", _without(VEHICLE_MIN, "plate")),
    ],
)
def test_undocumented_names_are_ignored(key: str, endpoint: str, body: dict[str, Any]) -> None:
    with pytest.raises(ContractError) as caught:
        ENDPOINTS[endpoint].validate({**body, key: "PL8RDR"})
    assert caught.value.code == 9006


def test_unknown_keys_do_not_reach_the_normalized_dict() -> None:
    assert ENDPOINTS["permits/push"].validate({**PUSH_EXAMPLE, "colour": "red"}) == PUSH_CANONICAL


def test_first_documented_alias_wins_and_null_falls_through() -> None:
    body = {**PUSH_MIN, "permitNo": None, "TicketNumber": "T-1"}
    assert ENDPOINTS["permits/push"].validate(body)["permit_no"] == "T-1"
    body = {**PUSH_MIN, "permitNo": "P-1", "TicketNumber": "T-1"}
    assert ENDPOINTS["permits/push"].validate(body)["permit_no"] == "P-1"


def test_strings_are_trimmed_like_laravel() -> None:
    fields = ENDPOINTS["permits/push"].validate({**PUSH_MIN, "LicencePlate": "  PL8RDR\t"})
    assert fields["plate"] == "PL8RDR"


def test_token_is_never_in_the_normalized_dict() -> None:
    for name, body in MIN_BODIES.items():
        assert not set(ENDPOINTS[name].validate(body)) & {"apiToken", "api_token"}


def test_check_token_present_returns_the_token() -> None:
    assert check_token_present({"apiToken": " t-1 "}) == "t-1"


def test_colour_over_50_is_truncated_with_the_documented_warning() -> None:
    checked = ENDPOINTS["vehicles/push"].check({**VEHICLE_MIN, "colour": "r" * 60})
    assert checked.fields["colour"] == "r" * 50
    assert checked.warnings == ("The vehicle colour name was too long and has been truncated.",)


def test_to_wire_refuses_unknown_fields_and_floats() -> None:
    with pytest.raises(KeyError):
        ENDPOINTS["permits/push"].to_wire({"licence_plate": "X"})
    with pytest.raises(TypeError):
        ENDPOINTS["permits/push"].to_wire({"amount": 14.5})
    with pytest.raises(ValueError):
        ENDPOINTS["permits/push"].to_wire({"amount": Decimal("NaN")})
    with pytest.raises(ValueError):
        ENDPOINTS["permits/push"].to_wire({"end_time": datetime(2018, 7, 2, 9, 30)})


def test_to_wire_converts_aware_times_to_utc() -> None:
    eastern = timezone(timedelta(hours=-4))
    wire = ENDPOINTS["permits/update"].to_wire(
        {"reference_id": "r", "end_time": datetime(2018, 7, 2, 5, 30, tzinfo=eastern)}
    )
    assert wire == {"referenceID": "r", "endTime": "2018-07-02T09:30:00"}


def test_redact_tokens_masks_both_token_names_at_any_depth() -> None:
    body = {"apiToken": "s1", "nested": [{"api_token": "s2"}], "plate": "X"}
    assert redact_tokens(body) == {
        "apiToken": "***",
        "nested": [{"api_token": "***"}],
        "plate": "X",
    }


def test_plate_is_normalized_to_letters_and_digits() -> None:
    assert normalize_plate(" pl8-rdr ") == "PL8RDR"


# ------------------------------------------------------------------ answers


def test_permit_success_body_has_internal_reference_beside_reference() -> None:
    assert permit_success_body("1a9b5375-cb75-4c71-9939-eeae550b09ac") == {
        "status": "success",
        "reference_id": "1a9b5375-cb75-4c71-9939-eeae550b09ac",
        "InternalReferenceID": "1a9b5375-cb75-4c71-9939-eeae550b09ac",
    }


def test_vehicle_and_stats_bodies_use_documented_string_values() -> None:
    assert vehicle_success_body(158, ["w"]) == {
        "status": "success",
        "vehicle_id_id": "158",
        "warnings": ["w"],
    }
    assert stats_body([("standard", "zone1", 4), ("temp", "zone1", 35)]) == {
        "data": [
            {"type": "standard", "zone": "zone1", "total": "4"},
            {"type": "temp", "zone": "zone1", "total": "35"},
        ]
    }


def test_plate_validation_body_reproduces_the_documented_merged_sample() -> None:
    expires = datetime(2025, 4, 30, 23, 59, 59)
    body = plate_validation_body(
        "ABC123",
        [PlatePermit("standard", "BIKE", expires), PlatePermit("standard", "MOTO-S", expires)],
        "Wanted to talk with.",
        [
            Dntt(
                "Main Campus",
                datetime(2024, 11, 15, 0, 0),
                datetime(2024, 11, 15, 23, 59),
                "CLEAR FOR ANY PAY AREA",
            )
        ],
    )
    assert body == {
        "error": 0,
        "data": {
            "response": "standard: BIKE\n Expires: 2025-04-30 23:59:59\nstandard: MOTO-S\n"
            " Expires: 2025-04-30 23:59:59\n\nALARM: Wanted to talk with.\n\nDNTT: Main Campus\n"
            "2024-11-15 00:00:00-2024-11-15 23:59:00 \nCLEAR FOR ANY PAY AREA\n\n",
            "plate": "ABC123",
            "responseJSON": {
                "permits": [
                    {"expires": "2025-04-30 23:59:59", "type": "standard", "shortName": "BIKE"},
                    {"expires": "2025-04-30 23:59:59", "type": "standard", "shortName": "MOTO-S"},
                ],
                "dntt": [
                    {
                        "notes": "CLEAR FOR ANY PAY AREA",
                        "start": "2024-11-15 00:00:00",
                        "location": "Main Campus",
                        "end": "2024-11-15 23:59:00",
                    }
                ],
                "alarm": "Wanted to talk with.",
            },
        },
        "message": "",
    }
    assert plate_permits(body)[1] == PlatePermit("standard", "MOTO-S", expires)


def test_plate_validation_without_data_is_the_documented_no_data_sample() -> None:
    assert plate_validation_body("ABC123") == {
        "error": 0,
        "data": {"response": "", "plate": "ABC123", "responseJSON": {}},
        "message": "",
    }


def _plate_body(response_json: Any) -> dict[str, Any]:
    return {"error": 0, "data": {"response": "", "plate": "ABC123", "responseJSON": response_json}}


PLATE_PERMIT = {"expires": "2025-04-30 23:59:59", "type": "standard", "shortName": "BIKE"}


@pytest.mark.parametrize(
    ("response_json", "expected"),
    [
        ({}, []),
        ([], []),  # PHP's json_encode of an empty array
        ({"alarm": "Wanted."}, []),
        ({"permits": []}, []),
        (
            {"permits": [PLATE_PERMIT]},
            [PlatePermit("standard", "BIKE", datetime(2025, 4, 30, 23, 59, 59))],
        ),
    ],
)
def test_plate_permits_reads_the_documented_shapes(response_json: Any, expected: Any) -> None:
    assert plate_permits(_plate_body(response_json)) == expected


def _nested(depth: int) -> list[Any]:
    tree: list[Any] = []
    for _ in range(depth):
        tree = [tree]
    return tree


DEEP = _nested(5000)  # deeper than the interpreter's recursion limit


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "ABC123",
        {},
        {"data": None},
        {"data": []},
        {"data": {"plate": "ABC123"}},  # no responseJSON
        _plate_body(None),
        _plate_body("none"),
        _plate_body(["permit"]),
        _plate_body({"permits": None}),
        _plate_body({"permits": "BIKE"}),
        _plate_body({"permits": PLATE_PERMIT}),
        _plate_body({"permits": ["standard: BIKE"]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": None}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": 1746057599}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": "2025-04-30T23:59:59"}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": "2025-4-30 23:59:59"}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": "2025-04-31 23:59:59"}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": "0000-01-01 00:00:00"}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": " 2025-04-30 23:59:59"}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "expires": "٢٠٢٥-04-30 23:59:59"}]}),
        _plate_body({"permits": [{k: v for k, v in PLATE_PERMIT.items() if k != "type"}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "type": 7}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "shortName": None}]}),
        _plate_body({"permits": [{**PLATE_PERMIT, "type": DEEP}]}),
    ],
)
def test_plate_permits_refuses_any_undocumented_shape_with_value_error(body: Any) -> None:
    with pytest.raises(ValueError, match=r"validate/plate|permit"):
        plate_permits(body)


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=25),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["data", "responseJSON", "permits", "expires", "type", "shortName"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@given(JSON_LIKE)
@example(_plate_body({"permits": [{**PLATE_PERMIT, "type": DEEP}]}))
def test_plate_permits_returns_permits_or_raises_value_error_for_any_json(body: Any) -> None:
    try:
        permits = plate_permits(body)
    except ValueError:
        return
    assert all(isinstance(p, PlatePermit) for p in permits)


@given(data=st.data())
def test_plate_permits_of_a_mutated_documented_answer_is_read_or_value_error(
    data: st.DataObject,
) -> None:
    body = _plate_body({"permits": [dict(PLATE_PERMIT), dict(PLATE_PERMIT)], "alarm": "A"})
    target = data.draw(st.sampled_from(["body", "data", "responseJSON", "permits", "entry"]))
    value = data.draw(JSON_LIKE)
    if target == "body":
        body = value
    elif target == "data":
        body["data"] = value
    elif target == "responseJSON":
        body["data"]["responseJSON"] = value
    elif target == "permits":
        body["data"]["responseJSON"]["permits"] = value
    else:
        key = data.draw(st.sampled_from(["expires", "type", "shortName"]))
        body["data"]["responseJSON"]["permits"][0][key] = value
    try:
        permits = plate_permits(body)
    except ValueError:
        return
    assert all(isinstance(p.expires, datetime) for p in permits)


def test_validate_plate_errors_carry_both_envelopes() -> None:
    body = ENDPOINTS["validate/plate"].error_body(ContractError(9006))
    assert body["error"] == body["ErrorCode"] == 9006
    assert body["message"] == body["ErrorMessage"] == "Plate is a required field."


# ------------------------------------------------------------------ boundaries (hypothesis)

SAFE_TEXT = string.ascii_letters + string.digits


def _length_cases() -> list[Any]:
    cases = []
    for ep in ENDPOINTS.values():
        for spec in ep.fields:
            plain = spec.choices is None and spec.too_long_code in (9021, 9030, 9015)
            kinds = ("text", "email", "currency")
            if spec.max_length is not None and spec.kind in kinds and plain:
                cases.append(pytest.param(ep.name, spec, id=f"{ep.name}:{spec.name}"))
    return cases


def _value_of_length(spec: FieldSpec, text: str) -> str:
    if spec.kind == "email":
        return text[:-2] + "@x"
    return text


@pytest.mark.parametrize(("endpoint", "spec"), _length_cases())
@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_text_at_its_limit_passes_and_one_past_fails(
    endpoint: str, spec: FieldSpec, data: st.DataObject
) -> None:
    assert spec.max_length is not None
    ep = ENDPOINTS[endpoint]
    base = _without(MIN_BODIES[endpoint], *spec.aliases)
    at_limit = data.draw(st.text(SAFE_TEXT, min_size=spec.max_length, max_size=spec.max_length))
    fields = ep.validate({**base, spec.wire_name: _value_of_length(spec, at_limit)})
    assert len(fields[spec.name]) == spec.max_length
    past = _value_of_length(spec, at_limit + data.draw(st.sampled_from(SAFE_TEXT)))
    if spec.overflow == "truncate":
        checked = ep.check({**base, spec.wire_name: past})
        assert checked.fields[spec.name] == past[: spec.max_length]
        assert checked.warnings == (spec.truncate_warning,)
        return
    with pytest.raises(ContractError) as caught:
        ep.validate({**base, spec.wire_name: past})
    assert (caught.value.code, caught.value.field) == (spec.too_long_code, spec.name)


@given(st.decimals(min_value=AMOUNT_MIN, max_value=AMOUNT_MAX, places=2))
@example(AMOUNT_MIN)
@example(AMOUNT_MAX)
def test_every_amount_in_range_is_accepted_exactly(amount: Decimal) -> None:
    fields = ENDPOINTS["permits/push"].validate({**PUSH_MIN, "Amount": f"{amount:.2f}"})
    assert fields["amount"] == amount
    assert ENDPOINTS["permits/push"].to_wire(fields)["Amount"] == f"{amount:.2f}"


@pytest.mark.parametrize(
    ("raw", "code"),
    [("0.01", None), ("999999.99", None), ("0.00", 9033), ("1000000.00", 9030), (".50", 9033)],
)
def test_amount_boundaries(raw: str, code: int | None) -> None:
    body = {**PUSH_MIN, "Amount": raw}
    if code is None:
        assert ENDPOINTS["permits/push"].validate(body)["amount"] == Decimal(raw)
        return
    with pytest.raises(ContractError) as caught:
        ENDPOINTS["permits/push"].validate(body)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("EUR", "EUR"),
        ("eur", "EUR"),
        (" gbp ", "GBP"),
        ("cad", "CAD"),
        ("USD", "USD"),
        ("POINTS-123", "POINTS-123"),
    ],
)
@pytest.mark.parametrize(
    ("endpoint", "body", "name"),
    [("permits/push", PUSH_MIN, "CurrencyID"), ("permits/update", DELETE_EXAMPLE, "currency")],
)
def test_any_currency_of_up_to_ten_characters_is_taken_and_sent_in_upper_case(
    endpoint: str, body: dict[str, Any], name: str, raw: str, sent: str
) -> None:
    # "Currency | String | 10-characters"; the setup guide: "Supported defaults include
    # CAD or USD": examples of the field, not a list the Controller limits it to.
    contract = ENDPOINTS[endpoint]
    fields = contract.validate({**body, name: raw})
    assert fields["currency"] == sent
    assert contract.to_wire(fields)[contract.field("currency").wire_name] == sent


@given(st.text(alphabet=string.printable, min_size=1, max_size=10).filter(str.strip))
def test_no_currency_text_within_the_documented_length_is_refused(raw: str) -> None:
    fields = ENDPOINTS["permits/push"].validate({**PUSH_MIN, "CurrencyID": raw})
    assert fields["currency"] == raw.strip(" \t\n\r\0\x0b").upper()


@given(st.text(max_size=12))
def test_any_amount_text_is_accepted_or_refused_with_a_documented_code(raw: str) -> None:
    try:
        amount = ENDPOINTS["permits/push"].validate({**PUSH_MIN, "Amount": raw}).get("amount")
    except ContractError as error:
        assert error.code in (9030, 9033)
    else:
        assert amount is None or AMOUNT_MIN <= amount <= AMOUNT_MAX


NAIVE_TIMES = st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30))
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).filter(bool)


def _offset_text(minutes: int, colon: bool) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


@given(NAIVE_TIMES)
def test_strict_time_round_trips(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    parsed = parse_time(text)
    assert parsed == moment.replace(tzinfo=UTC)
    assert format_time(parsed) == text


@given(NAIVE_TIMES, OFFSETS, st.booleans())
def test_offset_time_is_refused_strict_and_converted_lenient(
    moment: datetime, minutes: int, colon: bool
) -> None:
    moment = moment.replace(microsecond=0)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + _offset_text(minutes, colon)
    body = {**PUSH_MIN, "startTime": text, "endTime": "9999-12-31T23:59:59"}
    with pytest.raises(ContractError) as caught:
        ENDPOINTS["permits/push"].validate(body)
    assert caught.value.code == 9007
    expected = moment.replace(tzinfo=UTC) - timedelta(minutes=minutes)
    fields = ENDPOINTS["permits/push"].validate(body, lenient_times=True)
    assert fields["start_time"] == expected
    assert fields["start_time"].utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2018-07-02T09:00:00-04:00", datetime(2018, 7, 2, 13, 0, tzinfo=UTC)),
        ("2018-07-02T09:00:00Z", datetime(2018, 7, 2, 9, 0, tzinfo=UTC)),
        ("2018-07-02T09:00:00.750+01:00", datetime(2018, 7, 2, 8, 0, tzinfo=UTC)),
        ("2018-07-02T09:00:00", datetime(2018, 7, 2, 9, 0, tzinfo=UTC)),
    ],
)
def test_lenient_times_accept_offsets_and_convert_to_utc(text: str, utc: datetime) -> None:
    assert parse_time(text, lenient=True) == utc


@pytest.mark.parametrize(
    "text",
    [
        "2018-07-02T09:00:00+24:00",
        "2018-07-02",
        "2018-07-02T9:00:00",
        "2018-7-2T09:00:00",
        "2018-07-02t09:00:00",
        "\uff12\uff10\uff11\uff18-07-02T09:00:00",  # full-width digits
        "2018-07-02T24:00:00",
        "0000-01-01T00:00:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_malformed_times_are_refused_even_lenient(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text, lenient=True)


# Strings include lone UTF-16 surrogates ("\ud800"): JSON can carry them, UTF-8 cannot.
ANY_TEXT = st.text(max_size=30) | st.text(st.characters(categories=["Cs", "Lu", "Nd"]), max_size=5)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _documented_keys(endpoint: str) -> list[str]:
    ep = ENDPOINTS[endpoint]
    return [ep.token_field, *(alias for spec in ep.fields for alias in spec.aliases)]


@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    data=st.data(),
    lenient=st.booleans(),
)
def test_any_json_body_is_validated_or_refused_with_a_documented_error(
    endpoint: str, data: st.DataObject, lenient: bool
) -> None:
    keys = st.sampled_from(_documented_keys(endpoint)) | st.text(max_size=10)
    body = data.draw(
        st.one_of(
            JSON_VALUES,
            st.dictionaries(keys, JSON_VALUES, max_size=10),
            st.dictionaries(keys, ANY_TEXT, max_size=10),
        )
    )
    if isinstance(body, dict) and data.draw(st.booleans()):
        body = {**MIN_BODIES[endpoint], **body}
    try:
        fields = ENDPOINTS[endpoint].validate(body, lenient_times=lenient)
    except ContractError as error:
        assert error.code in ERROR_MESSAGES
        assert json.dumps(error.body())
    else:
        wire = ENDPOINTS[endpoint].to_wire(fields)
        assert ENDPOINTS[endpoint].validate(wire, require_token=False) == fields


@given(st.binary(max_size=200), st.sampled_from(["application/json", "text/plain", None]))
def test_any_bytes_parse_or_are_9003(raw: bytes, content_type: str | None) -> None:
    try:
        parse_body(raw, content_type)
    except ContractError as error:
        assert error.code == 9003
