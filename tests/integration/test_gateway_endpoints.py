"""Every push endpoint through the live gateway and a real broker: the documented examples
land on their topic as valid Avro; every documented validation error is answered with its
code and the Controller's HTTP status, and produces nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.settings import Settings
from producers.gateway import create_app
from producers.openapi import push_codes
from schemas.avro import codec
from schemas.controller import ERROR_HTTP_STATUS, ERROR_MESSAGES
from tests.conftest import CLIENT, VENDOR, VENDOR_TOKEN
from tests.support.examples import (
    PERMIT_PUSH_EXAMPLE,
    PERMIT_UPDATE_EXAMPLE,
    PROFILE_PUSH_EXAMPLE,
    VEHICLE_PUSH_EXAMPLE,
)
from tests.support.kafka import topic_messages

TOKEN = {"apiToken": VENDOR_TOKEN}
FOREIGN_REFERENCE = "ps-00000000000000000000-00000000000000000000"


def url(endpoint: str, client: str = CLIENT) -> str:
    return f"/api/{client}/v1/{endpoint}"


@pytest.fixture
async def gateway(stack_settings: Settings):
    async with TestClient(TestServer(create_app(stack_settings))) as client:
        yield client


def messages(settings: Settings, topic: str):
    return topic_messages(settings.kafka_bootstrap_servers, settings.topic(topic))


async def push_reference(gateway) -> str:
    answer = await gateway.post(url("permits/push"), json={**TOKEN, **PERMIT_PUSH_EXAMPLE})
    assert answer.status == 200
    return (await answer.json())["reference_id"]


# ------------------------------------------------------------------------ documented examples


async def test_the_documented_permit_update_and_delete_land_as_update_and_delete(
    gateway, stack_settings
):
    reference = await push_reference(gateway)
    update = await gateway.post(
        url("permits/update"), json={**TOKEN, "referenceID": reference, **PERMIT_UPDATE_EXAMPLE}
    )
    delete = await gateway.post(url("permits/delete"), json={**TOKEN, "referenceID": reference})
    expected = {"status": "success", "reference_id": reference, "InternalReferenceID": reference}
    assert (update.status, await update.json()) == (200, expected)
    assert (delete.status, await delete.json()) == (200, expected)

    events = [
        codec().decode(m.value(), "ParkingSessionEvent")[1]
        for m in messages(stack_settings, "sessions")
    ]
    by_action = {event["action"]: event for event in events}
    assert sorted(by_action) == ["CREATE", "DELETE", "UPDATE"]
    assert {event["session_id"] for event in events} == {reference}
    assert by_action["UPDATE"]["end_time"] == datetime(2018, 7, 2, 9, 30, tzinfo=UTC)
    assert by_action["UPDATE"]["amount"] == Decimal("14.50")
    assert by_action["UPDATE"]["start_time"] is None
    assert by_action["DELETE"]["plate"] is None
    # One session, one key: the three events share a partition, so they stay in order.
    assert len({m.partition() for m in messages(stack_settings, "sessions")}) == 1


async def test_the_documented_vehicle_push_lands_on_the_vehicles_topic(gateway, stack_settings):
    answer = await gateway.post(url("vehicles/push"), json={**TOKEN, **VEHICLE_PUSH_EXAMPLE})
    body = await answer.json()
    assert answer.status == 200
    assert body == {"status": "success", "vehicle_id_id": body["vehicle_id_id"], "warnings": []}
    assert body["vehicle_id_id"].isdigit()

    [message] = messages(stack_settings, "vehicles")
    assert message.key() == b"PL8RDR:MA"
    _, event = codec().decode(message.value(), expected="VehicleEvent")
    assert event["vendor"] == VENDOR
    assert event["reference_id"] == body["vehicle_id_id"]
    assert (event["plate"], event["plate_type"], event["prov"]) == ("PL8RDR", "Motorcycle", "MA")
    assert (event["make"], event["colour"], event["year"]) == ("kia", "red", "2021")
    assert event["vin"] == "8GKS1AKC7FR518845"
    assert event["source"] == "GATEWAY"


async def test_the_documented_profile_push_lands_on_the_users_topic(gateway, stack_settings):
    answer = await gateway.post(url("profiles/push"), json={**TOKEN, **PROFILE_PUSH_EXAMPLE})
    body = await answer.json()
    assert answer.status == 200
    assert body == {"status": "success", "reference_id": body["reference_id"]}
    assert isinstance(body["reference_id"], int)

    [message] = messages(stack_settings, "users")
    assert message.key() == b"tester23"
    _, event = codec().decode(message.value(), expected="UserEvent")
    assert event["vendor"] == VENDOR
    assert (event["unique_id"], event["login_source"]) == ("tester23", "OPSCOM")
    assert (event["first_name"], event["email"]) == ("firstname", "test@test.com")
    assert event["province"] == "bc"  # province wins over its alias state
    assert event["date_of_birth"] == date(1901, 1, 31)
    assert event["driver_licence_prov"] == "BC"


async def test_a_permit_in_any_currency_the_controller_takes_is_accepted(gateway, stack_settings):
    # The docs limit CurrencyID to 10 characters and name CAD and USD as examples only.
    push = await gateway.post(
        url("permits/push"), json={**TOKEN, **PERMIT_PUSH_EXAMPLE, "CurrencyID": "eur"}
    )
    assert push.status == 200, await push.text()
    reference = (await push.json())["reference_id"]
    update = await gateway.post(
        url("permits/update"),
        json={**TOKEN, **PERMIT_UPDATE_EXAMPLE, "referenceID": reference, "currency": "POINTS-123"},
    )
    assert update.status == 200, await update.text()
    events = [
        codec().decode(m.value(), "ParkingSessionEvent")[1]
        for m in messages(stack_settings, "sessions")
    ]
    assert [(e["action"], e["currency"]) for e in events] == [
        ("CREATE", "EUR"),
        ("UPDATE", "POINTS-123"),
    ]


async def test_a_second_vehicle_with_the_same_vin_is_accepted(gateway, stack_settings):
    # The docs give vin a 25-character limit and no uniqueness rule.
    first = await gateway.post(url("vehicles/push"), json={**TOKEN, **VEHICLE_PUSH_EXAMPLE})
    second = await gateway.post(
        url("vehicles/push"), json={**TOKEN, **VEHICLE_PUSH_EXAMPLE, "plate": "NEW1"}
    )
    assert (first.status, second.status) == (200, 200), await second.text()
    events = [
        codec().decode(m.value(), "VehicleEvent")[1] for m in messages(stack_settings, "vehicles")
    ]
    assert sorted((e["plate"], e["vin"]) for e in events) == [
        ("NEW1", "8GKS1AKC7FR518845"),
        ("PL8RDR", "8GKS1AKC7FR518845"),
    ]


async def test_the_client_code_in_the_docs_other_spelling_is_the_same_client(gateway):
    answer = await gateway.post(
        url("vehicles/push", CLIENT.replace("-", "_")), json={**TOKEN, **VEHICLE_PUSH_EXAMPLE}
    )
    assert answer.status == 200


# ------------------------------------------------------------------------ documented errors

LONG = "X" * 60
NOT_JSON = ("raw", b'{"apiToken": ')
# (endpoint, case id, body or ("raw", bytes), extra headers, expected ErrorCode)
ERRORS: list[tuple[str, str, object, dict[str, str], int]] = []


def _cases(endpoint: str, *groups: list[tuple[str, object, int]]) -> None:
    for case_id, body, code in (case for group in groups for case in group):
        headers = {}
        if case_id == "bad-idempotency-key":
            headers = {"Idempotency-Key": " "}
        ERRORS.append((endpoint, case_id, body, headers, code))


def _auth_cases(example: dict) -> list[tuple[str, object, int]]:
    return [
        ("no-token", example, 9001),
        ("unknown-token", {**example, "apiToken": "not-a-vendor-token"}, 9002),
        ("token-not-a-string", {**example, "apiToken": 12345}, 9002),
        ("not-json", NOT_JSON, 9003),
        ("json-array", ("json", [TOKEN]), 9003),
        ("other-client", ("client", {**TOKEN, **example}), 9034),
        ("bad-idempotency-key", {**TOKEN, **example}, 9033),
    ]


P = {**TOKEN, **PERMIT_PUSH_EXAMPLE}
_cases(
    "permits/push",
    _auth_cases(PERMIT_PUSH_EXAMPLE),
    [
        ("no-end-time", {k: v for k, v in P.items() if k != "endTime"}, 9004),
        ("bad-end-time", {**P, "endTime": "02/07/2018"}, 9005),
        ("end-before-start", {**P, "endTime": "2018-07-02T08:00:00"}, 9005),
        ("no-plate", {**P, "LicencePlate": "  "}, 9006),
        ("bad-start-time", {**P, "startTime": "2018-13-02T09:00:00"}, 9007),
        ("plate-too-long", {**P, "LicencePlate": "X" * 26}, 9030),
        ("zone-too-long", {**P, "zone": "Z" * 201}, 9030),
        ("amount-not-pennies", {**P, "Amount": "14.5"}, 9033),
        ("amount-a-number", {**P, "Amount": 14.5}, 9033),
        ("currency-too-long", {**P, "CurrencyID": "C" * 11}, 9030),
    ],
)
U = {**TOKEN, "referenceID": FOREIGN_REFERENCE, **PERMIT_UPDATE_EXAMPLE}
_cases(
    "permits/update",
    _auth_cases({"referenceID": FOREIGN_REFERENCE, **PERMIT_UPDATE_EXAMPLE}),
    [
        ("no-reference", {**TOKEN, **PERMIT_UPDATE_EXAMPLE}, 9008),
        ("unknown-reference", U, 9009),
        (
            "controller-style-reference",
            {**U, "referenceID": "1a9b5375-cb75-4c71-9939-eeae550b09ac"},
            9009,
        ),
        ("bad-end-time", {**U, "endTime": "tomorrow"}, 9005),
        ("reference-too-long", {**U, "referenceID": "r" * 51}, 9030),
        ("amount-out-of-range", {**U, "Amount": "0.00"}, 9033),
        ("currency-too-long", {**U, "currency": "DOGECOIN-XL"}, 9030),
    ],
)
_cases(
    "permits/delete",
    _auth_cases({"referenceID": FOREIGN_REFERENCE}),
    [
        ("no-reference", {**TOKEN, "referenceID": ""}, 9008),
        ("unknown-reference", {**TOKEN, "reference_id": FOREIGN_REFERENCE}, 9009),
        ("reference-too-long", {**TOKEN, "referenceid": "r" * 51}, 9030),
        ("reference-a-number", {**TOKEN, "referenceID": 7}, 9033),
    ],
)
V = {**TOKEN, **VEHICLE_PUSH_EXAMPLE}
_cases(
    "vehicles/push",
    _auth_cases(VEHICLE_PUSH_EXAMPLE),
    [
        ("no-plate", {k: v for k, v in V.items() if k != "plate"}, 9006),
        ("no-plate-type", {k: v for k, v in V.items() if k != "plateType"}, 9010),
        ("no-province", {k: v for k, v in V.items() if k != "prov"}, 9011),
        ("plate-too-long", {**V, "plate": "P" * 51}, 9021),
        ("vin-too-long", {**V, "vin": "V" * 26}, 9030),
        ("year-not-4-digits", {**V, "year": "21"}, 9033),
    ],
)
R = {**TOKEN, **PROFILE_PUSH_EXAMPLE}
_cases(
    "profiles/push",
    _auth_cases(PROFILE_PUSH_EXAMPLE),
    [
        ("no-unique-id", {**R, "unique_id": ""}, 9013),
        ("no-login-source", {k: v for k, v in R.items() if k != "login_source"}, 9014),
        ("login-source-too-long", {**R, "login_source": "L" * 21}, 9015),
        ("city-too-long", {**R, "city": LONG}, 9030),
        ("province-too-short", {**R, "province": "B"}, 9032),
        ("bad-email", {**R, "email": "not-an-address"}, 9033),
        ("bad-birth-date", {**R, "date_of_birth": "1901-02-30"}, 9033),
    ],
)
TOPIC_OF = {
    "permits/push": "sessions",
    "permits/update": "sessions",
    "permits/delete": "sessions",
    "vehicles/push": "vehicles",
    "profiles/push": "users",
}


@pytest.mark.parametrize("endpoint", sorted(TOPIC_OF))
def test_the_error_cases_cover_every_code_the_gateway_documents(endpoint):
    tested = {code for ep, _, _, _, code in ERRORS if ep == endpoint}
    assert tested == push_codes(endpoint)


async def _post(gateway, endpoint: str, body: object, headers: dict[str, str]):
    if isinstance(body, tuple) and body[0] == "raw":
        return await gateway.post(
            url(endpoint), data=body[1], headers={"Content-Type": "application/json", **headers}
        )
    if isinstance(body, tuple) and body[0] == "json":
        return await gateway.post(url(endpoint), json=body[1], headers=headers)
    if isinstance(body, tuple) and body[0] == "client":
        return await gateway.post(url(endpoint, "OC-OTHER"), json=body[1], headers=headers)
    return await gateway.post(url(endpoint), json=body, headers=headers)


@pytest.mark.parametrize("endpoint", sorted(TOPIC_OF))
async def test_every_documented_error_is_answered_with_its_code_and_produces_nothing(
    gateway, stack_settings, endpoint
):
    cases = [case for case in ERRORS if case[0] == endpoint]
    answers = []
    for _, case_id, body, headers, _code in cases:
        answer = await _post(gateway, endpoint, body, headers)
        answers.append((case_id, answer.status, await answer.json()))
    expected = [
        (
            case_id,
            ERROR_HTTP_STATUS[code],
            {"ErrorCode": code, "ErrorMessage": ERROR_MESSAGES[code]},
        )
        for _, case_id, _, _, code in cases
    ]
    assert answers == expected
    assert messages(stack_settings, TOPIC_OF[endpoint]) == []


async def test_a_body_sent_as_form_data_gets_9003(gateway, stack_settings):
    answer = await gateway.post(
        url("permits/push"), data=b"apiToken=abc", headers={"Content-Type": "text/plain"}
    )
    assert (answer.status, await answer.json()) == (
        400,
        {"ErrorCode": 9003, "ErrorMessage": "Could not parse the request."},
    )


async def test_a_push_without_its_client_code_gets_9000(gateway):
    answer = await gateway.post("/api/v1/permits/push", json={**TOKEN, **PERMIT_PUSH_EXAMPLE})
    assert (await answer.json())["ErrorCode"] == 9000
