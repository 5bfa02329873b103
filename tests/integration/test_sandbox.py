"""The sandbox, served for real on a free loopback port, answers as the vendor docs say.

Each test gets a fresh in-process server (aiohttp's TestServer binds a real socket);
tests/integration/test_sandbox_process.py covers the sandbox as a separate process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from foundation.controller import ControllerClient
from foundation.errors import ControllerAnswerUnreadable
from sandbox.app import SandboxConfig, create_app
from sandbox.faults import FaultConfig
from schemas.controller import ENDPOINTS, ERROR_MESSAGES, plate_permits
from tests.support.examples import PERMIT_PUSH_EXAMPLE, PROFILE_PUSH_EXAMPLE, VEHICLE_PUSH_EXAMPLE

CLIENT = "OC-TOMA"

TOKEN = "sbx-7f3c9a1e-token"
OTHER_SECRET = "someone-elses-secret-token"

PUSH_EXAMPLE = {"apiToken": TOKEN, **PERMIT_PUSH_EXAMPLE}
PERMIT_FIELDS = ENDPOINTS["permits/push"].validate(PUSH_EXAMPLE)
VEHICLE_EXAMPLE = {"apiToken": TOKEN, **VEHICLE_PUSH_EXAMPLE}
PROFILE_EXAMPLE = {"apiToken": TOKEN, **PROFILE_PUSH_EXAMPLE}
DOCUMENTED_USER_TYPES = [
    {"id": "1", "type_name": "Full Time Student", "ext_info": "Student"},
    {"id": "6", "type_name": "Demo", "ext_info": "Public"},
    {"id": "7", "type_name": "Full Time Staff", "ext_info": "Staff"},
    {"id": "8", "type_name": "Part Time Staff", "ext_info": "Staff"},
    {"id": "9", "type_name": "Part Time Student", "ext_info": "Student"},
    {"id": "10", "type_name": "Exchange Student", "ext_info": "Student"},
    {"id": "11", "type_name": "Athletics Member", "ext_info": "Athletics"},
    {"id": "12", "type_name": "Complimentary", "ext_info": "Public"},
    {"id": "13", "type_name": "Daily Reserved", "ext_info": "Public"},
]


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


class Answer(NamedTuple):
    status: int
    body: Any
    headers: Any


class Api:
    """A vendor's view of one running sandbox."""

    def __init__(self, session: aiohttp.ClientSession, url: str = "") -> None:
        self.session = session
        self.url = url.rstrip("/")

    async def call(
        self,
        endpoint: str,
        body: Any,
        *,
        client: str = CLIENT,
        timeout: float = 10.0,
    ) -> Answer:
        return await self.raw("POST", ENDPOINTS[endpoint].path(client), json=body, timeout=timeout)

    async def raw(self, method: str, path: str, *, timeout: float = 10.0, **kw: Any) -> Answer:
        async with self.session.request(
            method, path, timeout=aiohttp.ClientTimeout(total=timeout), **kw
        ) as response:
            text = await response.text()
            try:
                body: Any = await response.json(content_type=None)
            except ValueError:
                body = text
            return Answer(response.status, body, response.headers)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self.raw(method, f"/_sandbox/{path}", json=body)
        assert answer.status == 200, answer
        return answer.body


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start(tmp_path: Any) -> AsyncIterator[Start]:
    """Start sandboxes (stopped at teardown); ``await start(**config)`` gives an Api."""
    running: list[tuple[TestServer, aiohttp.ClientSession]] = []

    async def _start(**overrides: Any) -> Api:
        config = SandboxConfig(**{"client": CLIENT, "api_token": TOKEN, **overrides})
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        session = aiohttp.ClientSession(str(server.make_url("")))
        running.append((server, session))
        return Api(session, str(server.make_url("")))

    yield _start
    for server, session in running:
        await session.close()
        await server.close()


@pytest.fixture
async def api(start: Start) -> Api:
    return await start()


def _error(answer: Answer, code: int) -> None:
    assert answer.body == {"ErrorCode": code, "ErrorMessage": ERROR_MESSAGES[code]}, answer


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


# ------------------------------------------------------------------ permits


async def test_permit_push_example_gets_documented_answer(api: Api) -> None:
    answer = await api.call("permits/push", PUSH_EXAMPLE)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert set(answer.body) == {"status", "reference_id", "InternalReferenceID"}
    assert answer.body["status"] == "success"
    assert answer.body["InternalReferenceID"] == answer.body["reference_id"]
    _uuid(answer.body["reference_id"])


async def test_permit_update_example_changes_the_named_permit(api: Api) -> None:
    pushed = (await api.call("permits/push", PUSH_EXAMPLE)).body
    update = {
        "apiToken": TOKEN,
        "referenceID": pushed["reference_id"],
        "plate": "PL8RDR2",
        "Amount": "16.00",
        "currency": "USD",
        "endTime": "2018-07-02T10:00:00",
    }
    answer = await api.call("permits/update", update)
    assert (answer.status, answer.body) == (200, pushed)
    [stored] = (await api.control("GET", f"permits?reference_id={pushed['reference_id']}"))[
        "permits"
    ]
    assert (stored["plate"], stored["amount"], stored["currency"], stored["end_time"]) == (
        "PL8RDR2",
        "16.00",
        "USD",
        "2018-07-02T10:00:00",
    )
    assert stored["start_time"] == "2018-07-02T09:00:00"


async def test_permit_delete_example_removes_the_permit_once(api: Api) -> None:
    pushed = (await api.call("permits/push", PUSH_EXAMPLE)).body
    delete = {"apiToken": TOKEN, "referenceID": pushed["reference_id"]}
    answer = await api.call("permits/delete", delete)
    assert (answer.status, answer.body) == (200, pushed)
    again = await api.call("permits/delete", delete)
    assert again.status == 404
    _error(again, 9009)
    [stored] = (await api.control("GET", "permits"))["permits"]
    assert stored["deleted"] is True


@pytest.mark.parametrize("endpoint", ["permits/update", "permits/delete"])
@pytest.mark.parametrize("alias", ["referenceID", "referenceid", "reference_id"])
async def test_unknown_reference_id_is_9009(api: Api, endpoint: str, alias: str) -> None:
    answer = await api.call(endpoint, {"apiToken": TOKEN, alias: str(uuid.uuid4())})
    assert answer.status == 404
    _error(answer, 9009)


@pytest.mark.parametrize("endpoint", ["permits/update", "permits/delete"])
async def test_missing_reference_id_is_9008(api: Api, endpoint: str) -> None:
    answer = await api.call(endpoint, {"apiToken": TOKEN, "plate": "PL8RDR"})
    assert answer.status == 422
    _error(answer, 9008)


async def test_second_push_of_a_ticket_number_is_9022(api: Api) -> None:
    assert (await api.call("permits/push", PUSH_EXAMPLE)).status == 200
    answer = await api.call("permits/push", {**PUSH_EXAMPLE, "LicencePlate": "OTHER"})
    assert answer.status == 409
    _error(answer, 9022)
    assert len((await api.control("GET", "permits"))["permits"]) == 1


async def test_a_permit_in_any_currency_of_up_to_ten_characters_is_kept(api: Api) -> None:
    # "Currency | String | 10-characters"; CAD and USD are the docs' examples, not a list.
    pushed = await api.call("permits/push", {**PUSH_EXAMPLE, "CurrencyID": "eur"})
    assert pushed.status == 200, pushed
    reference = pushed.body["reference_id"]
    stored = await api.control("GET", f"permits?reference_id={reference}")
    assert stored["permits"][0]["currency"] == "EUR"
    update = {"apiToken": TOKEN, "referenceID": reference, "currency": "POINTS-123"}
    assert (await api.call("permits/update", update)).status == 200
    stored = await api.control("GET", f"permits?reference_id={reference}")
    assert stored["permits"][0]["currency"] == "POINTS-123"
    too_long = await api.call(
        "permits/push", {**PUSH_EXAMPLE, "permitNo": "T-2", "CurrencyID": "DOGECOIN-XL"}
    )
    _error(too_long, 9030)


async def test_update_ending_before_the_stored_start_is_9005(api: Api) -> None:
    pushed = (await api.call("permits/push", PUSH_EXAMPLE)).body
    answer = await api.call(
        "permits/update",
        {
            "apiToken": TOKEN,
            "referenceID": pushed["reference_id"],
            "endTime": "2018-07-02T08:00:00",
        },
    )
    _error(answer, 9005)


async def test_permit_stats_count_live_permits_per_type_and_zone(api: Api) -> None:
    for number, zone in enumerate(["Lot 01", "Lot 01", "Lot 02", "Red Lot"]):
        body = {**PUSH_EXAMPLE, "zone": zone, "permitNo": f"T-{number}"}
        assert (await api.call("permits/push", body)).status == 200
    deleted = await api.call("permits/push", {**PUSH_EXAMPLE, "zone": "Lot 02", "permitNo": "X"})
    await api.call(
        "permits/delete", {"apiToken": TOKEN, "referenceID": deleted.body["reference_id"]}
    )
    answer = await api.call("permits/stats", {"apiToken": TOKEN})
    assert answer.status == 200
    assert answer.body == {
        "data": [
            {"type": "temp", "zone": "Lot 01", "total": "2"},
            {"type": "temp", "zone": "Lot 02", "total": "1"},
            {"type": "temp", "zone": "Red Lot", "total": "1"},
        ]
    }
    filtered = await api.call("permits/stats", {"apiToken": TOKEN, "zones": "lot 01, Red Lot"})
    assert filtered.body == {
        "data": [
            {"type": "temp", "zone": "Lot 01", "total": "2"},
            {"type": "temp", "zone": "Red Lot", "total": "1"},
        ]
    }
    nothing = await api.call(
        "permits/stats", {"apiToken": TOKEN, "zones": "NOT-REQUIRED--LIST-OF-ZONES"}
    )
    assert nothing.body == {"data": []}


# ------------------------------------------------------------------ vehicles


async def test_vehicle_example_gets_documented_answer(api: Api) -> None:
    answer = await api.call("vehicles/push", VEHICLE_EXAMPLE, client="OC_TOMA")
    assert (answer.status, answer.body) == (
        200,
        {"status": "success", "vehicle_id_id": "1", "warnings": []},
    )


async def test_same_plate_and_province_is_9012_elsewhere_is_new(api: Api) -> None:
    assert (await api.call("vehicles/push", VEHICLE_EXAMPLE)).status == 200
    again = await api.call("vehicles/push", {**VEHICLE_EXAMPLE, "plate": "pl8 rdr", "vin": None})
    assert again.status == 409
    _error(again, 9012)
    by_id = await api.call(
        "vehicles/push", {**_without(VEHICLE_EXAMPLE, "prov", "vin"), "provID": "35"}
    )
    _error(by_id, 9012)  # provID 35 is Massachusetts, the same province as "MA"
    ontario = await api.call("vehicles/push", {**_without(VEHICLE_EXAMPLE, "vin"), "prov": "ON"})
    assert ontario.body["vehicle_id_id"] == "2"


async def test_a_second_vehicle_with_the_same_vin_is_accepted(api: Api) -> None:
    # The docs give vin a 25-character limit and no uniqueness rule (contract decision 29).
    assert (await api.call("vehicles/push", VEHICLE_EXAMPLE)).status == 200
    answer = await api.call("vehicles/push", {**VEHICLE_EXAMPLE, "plate": "NEW1"})
    assert (answer.status, answer.body) == (
        200,
        {"status": "success", "vehicle_id_id": "2", "warnings": []},
    )
    vehicles = (await api.control("GET", "state"))["vehicles"]
    assert sorted((v["plate"], v["vin"]) for v in vehicles) == [
        ("NEW1", "8GKS1AKC7FR518845"),
        ("PL8RDR", "8GKS1AKC7FR518845"),
    ]


async def test_long_colour_is_truncated_with_the_documented_warning(api: Api) -> None:
    answer = await api.call("vehicles/push", {**VEHICLE_EXAMPLE, "colour": "dark red " * 10})
    assert answer.body["warnings"] == [
        "The vehicle colour name was too long and has been truncated."
    ]
    [vehicle] = (await api.control("GET", "state"))["vehicles"]
    assert len(vehicle["colour"]) <= 50


@pytest.mark.parametrize(
    ("change", "field"),
    [({"plateType": "Hovercraft"}, "plateType"), ({"prov": "Narnia"}, "prov")],
)
async def test_unknown_plate_type_or_province_is_9033(
    api: Api, change: dict[str, str], field: str
) -> None:
    _error(await api.call("vehicles/push", {**VEHICLE_EXAMPLE, **change}), 9033)


async def test_plate_type_and_province_by_id(api: Api) -> None:
    body = {**_without(VEHICLE_EXAMPLE, "plateType", "prov"), "plateTypeID": "4", "provID": "9"}
    assert (await api.call("vehicles/push", body)).status == 200


# ------------------------------------------------------------------ profiles


async def test_profile_example_gets_documented_answer_and_updates_in_place(api: Api) -> None:
    created = await api.call("profiles/push", PROFILE_EXAMPLE, client="OC_TOMA")
    assert (created.status, created.body) == (200, {"status": "success", "reference_id": 1})
    updated = await api.call(
        "profiles/push",
        {"apiToken": TOKEN, "unique_id": "tester23", "login_source": "OPSCOM", "city": "Ottawa"},
    )
    assert updated.body == {"status": "success", "reference_id": 1}
    [profile] = (await api.control("GET", "state"))["profiles"]
    assert (profile["city"], profile["email"], profile["province"]) == (
        "Ottawa",
        "test@test.com",
        "bc",
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"email": "TEST@test.com"}, 9019),
        ({"email": "other@test.com", "user_name": "UserName"}, 9020),
    ],
)
async def test_email_and_username_belong_to_one_user(
    api: Api, change: dict[str, str], code: int
) -> None:
    assert (await api.call("profiles/push", PROFILE_EXAMPLE)).status == 200
    answer = await api.call("profiles/push", {**PROFILE_EXAMPLE, "unique_id": "other", **change})
    assert answer.status == 409
    _error(answer, code)


@pytest.mark.parametrize(
    ("missing", "code"), [("email", 9016), ("first_name", 9017), ("last_name", 9018)]
)
async def test_new_profile_without_email_or_names_is_refused(
    api: Api, missing: str, code: int
) -> None:
    _error(await api.call("profiles/push", _without(PROFILE_EXAMPLE, missing)), code)


@pytest.mark.parametrize(
    ("change", "code"),
    [({"login_source": "LDAP"}, 9015), ({"user_type_id": "99"}, 9033)],
)
async def test_unknown_login_source_or_user_type_is_refused(
    api: Api, change: dict[str, str], code: int
) -> None:
    _error(await api.call("profiles/push", {**PROFILE_EXAMPLE, **change}), code)


async def test_user_types_are_the_documented_list(api: Api) -> None:
    answer = await api.call("profiles/types/list", {"apiToken": TOKEN}, client="OC_TOMA")
    assert answer.body == {"status": "success", "user_types": DOCUMENTED_USER_TYPES}


# ------------------------------------------------------------------ violations


async def test_overdue_violations_are_sent_once(api: Api) -> None:
    body = {"apiToken": TOKEN}
    first = await api.call("violations/send_overdue_to_collections", body, client="OC_TOMA")
    assert first.status == 200
    assert set(first.body) == {"records", "state"}
    assert set(first.body["state"]) == {"version", "csrf_token"}
    [record] = first.body["records"]
    assert (record["ViolationID"], record["Ticket"], record["UUID"]) == (
        9,
        "1-100013",
        "d9a1c8bb-4ed1-411e-91b1-0b63ba52e04d",
    )
    assert record["SentToCollections"] is None
    assert record["vehicle"]["Plate"] == "AJNR123"
    assert record["vehicle"]["drivers"][0]["loginSource"] == "OPSCOM"
    second = await api.call("violations/send_overdue_to_collections", body)
    assert second.body["records"] == []


async def test_seeded_violations_are_sent_when_overdue(api: Api) -> None:
    await api.call("violations/send_overdue_to_collections", {"apiToken": TOKEN})
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    seeded = await api.control(
        "POST", "violations", {"records": [{"Ticket": "1-2001", "Fine": 75}, {"Due": future}]}
    )
    assert seeded == {"ids": [10, 11]}
    answer = await api.call("violations/send_overdue_to_collections", {"apiToken": TOKEN})
    assert [(r["ViolationID"], r["Ticket"], r["Fine"]) for r in answer.body["records"]] == [
        (10, "1-2001", 75)
    ]


# ------------------------------------------------------------------ plate validation


async def test_plate_validation_lists_active_permits_with_their_end(api: Api) -> None:
    await api.control("PUT", "clock", {"now": "2018-07-02T09:10:00"})
    assert (await api.call("permits/push", PUSH_EXAMPLE)).status == 200
    answer = await api.call(
        "validate/plate", {"api_token": TOKEN, "client": CLIENT, "plate": "pl8-rdr"}
    )
    assert (answer.status, answer.body) == (
        200,
        {
            "error": 0,
            "data": {
                "response": "temp: Lot 4\n Expires: 2018-07-02 09:30:00\n\n",
                "plate": "pl8-rdr",
                "responseJSON": {
                    "permits": [
                        {"expires": "2018-07-02 09:30:00", "type": "temp", "shortName": "Lot 4"}
                    ]
                },
            },
            "message": "",
        },
    )


async def test_plate_validation_without_data_is_the_no_data_sample(api: Api) -> None:
    await api.control("PUT", "clock", {"now": "2018-07-02T10:00:00"})  # the permit has ended
    await api.call("permits/push", PUSH_EXAMPLE)
    answer = await api.call(
        "validate/plate", {"api_token": TOKEN, "client": "OC_TOMA", "plate": "PL8RDR"}
    )
    assert answer.body == {
        "error": 0,
        "data": {"response": "", "plate": "PL8RDR", "responseJSON": {}},
        "message": "",
    }


async def test_plate_validation_shows_seeded_alarm_and_dntt(api: Api) -> None:
    await api.control(
        "POST",
        "plates",
        {
            "plate": "DEF123",
            "alarm": "Wanted to talk with.",
            "dntt": [
                {
                    "location": "Lot 6",
                    "start": "2024-10-23T00:00:00",
                    "end": "2025-04-30T23:59:00",
                    "notes": "Hertz truck",
                }
            ],
        },
    )
    answer = await api.call(
        "validate/plate", {"api_token": TOKEN, "client": CLIENT, "plate": "DEF123"}
    )
    assert answer.body["data"]["response"] == (
        "ALARM: Wanted to talk with.\n\nDNTT: Lot 6\n2024-10-23 00:00:00-2025-04-30 23:59:00 "
        "\nHertz truck\n\n"
    )
    assert answer.body["data"]["responseJSON"]["dntt"][0]["location"] == "Lot 6"


async def test_plate_validation_shows_times_in_the_display_zone(start: Start) -> None:
    api = await start(
        display_timezone="America/Toronto", now=datetime(2018, 7, 2, 9, 10, tzinfo=UTC)
    )
    await api.call("permits/push", PUSH_EXAMPLE)
    answer = await api.call(
        "validate/plate", {"api_token": TOKEN, "client": CLIENT, "plate": "PL8RDR"}
    )
    assert answer.body["data"]["responseJSON"]["permits"][0]["expires"] == "2018-07-02 05:30:00"


async def test_plate_validation_errors_use_its_own_envelope_too(api: Api) -> None:
    answer = await api.call("validate/plate", {"api_token": TOKEN, "client": CLIENT})
    assert answer.body == {
        "error": 9006,
        "data": {},
        "message": ERROR_MESSAGES[9006],
        "ErrorCode": 9006,
        "ErrorMessage": ERROR_MESSAGES[9006],
    }


# ------------------------------------------------------------------ auth and parsing


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/v1/permits/push", PUSH_EXAMPLE, 400, 9000),
        ("/api//v1/permits/stats", {"apiToken": TOKEN}, 400, 9000),
        ("/api/OC-TOMA/v1/permits/push", _without(PUSH_EXAMPLE, "apiToken"), 401, 9001),
        ("/api/OC-TOMA/v1/permits/push", {**PUSH_EXAMPLE, "apiToken": OTHER_SECRET}, 403, 9002),
        ("/api/OC-OTHER/v1/permits/push", PUSH_EXAMPLE, 403, 9034),
        ("/api/OC-OTHER/v1/permits/push", {**PUSH_EXAMPLE, "apiToken": OTHER_SECRET}, 403, 9002),
        ("/api/OC-TOMA/v1/permits/push", [PUSH_EXAMPLE], 400, 9003),
        ("/api/OC-TOMA/v1/permits/push", _without(PUSH_EXAMPLE, "endTime"), 422, 9004),
        ("/api/OC-TOMA/v1/permits/push", _without(PUSH_EXAMPLE, "LicencePlate"), 422, 9006),
    ],
)
async def test_request_errors_answer_documented_code_by_http(
    api: Api, path: str, body: Any, status: int, code: int
) -> None:
    answer = await api.raw("POST", path, json=body)
    assert answer.status == status
    _error(answer, code)


async def test_token_of_this_client_under_another_client_on_validate_plate_is_9034(
    api: Api,
) -> None:
    answer = await api.call("validate/plate", {"api_token": TOKEN, "client": "X", "plate": "A"})
    assert (answer.status, answer.body["error"]) == (403, 9034)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"not json", "application/json"),
        (b"", "application/json"),
        (b'{"apiToken": "' + TOKEN.encode() + b'"}', "text/plain"),
        (b"\xff", "application/json"),
        (b'{"apiToken": "' + TOKEN.encode() + b'", "zones": "\\ud800"}', "application/json"),
    ],
)
async def test_unparseable_body_is_9003(api: Api, data: bytes, content_type: str) -> None:
    answer = await api.raw(
        "POST", "/api/OC-TOMA/v1/permits/stats", data=data, headers={"Content-Type": content_type}
    )
    assert answer.status == 400
    _error(answer, 9003)


async def test_oversized_body_is_9003_with_413(api: Api) -> None:
    big = {"apiToken": TOKEN, "zones": "x" * (2 * 1024 * 1024)}
    answer = await api.raw("POST", "/api/OC-TOMA/v1/permits/stats", json=big)
    assert answer.status == 413
    _error(answer, 9003)
    [entry] = (await api.control("GET", "journal"))["entries"]
    assert entry["body"] is None or len(entry["body"]) <= 4096


async def test_large_body_is_journaled_as_cut_text_with_the_token_masked(api: Api) -> None:
    body = {"apiToken": TOKEN, "zones": ",".join(["Lot"] * 30_000)}
    assert (await api.call("permits/stats", body)).status == 200
    [entry] = (await api.control("GET", "journal"))["entries"]
    assert entry["body"].startswith('{"apiToken": "***"')
    assert len(entry["body"]) == 4096


async def test_wrong_method_and_unknown_path_are_not_server_errors(api: Api) -> None:
    get = await api.raw("GET", "/api/OC-TOMA/v1/permits/push")
    assert (get.status, get.headers["Allow"]) == (405, "POST")
    unknown = await api.raw("POST", "/api/OC-TOMA/v1/permits/create", json={"apiToken": TOKEN})
    assert unknown.status == 404


async def test_error_status_can_be_forced_to_200_like_php(start: Start) -> None:
    api = await start(error_http_status=200)
    answer = await api.call("permits/push", _without(PUSH_EXAMPLE, "LicencePlate"))
    assert answer.status == 200
    _error(answer, 9006)


# ------------------------------------------------------------------ persistence


async def test_sqlite_state_survives_a_restart(start: Start, tmp_path: Any) -> None:
    db = str(tmp_path / "sandbox.sqlite")
    first = await start(db_path=db)
    pushed = (await first.call("permits/push", PUSH_EXAMPLE)).body
    await first.call("vehicles/push", VEHICLE_EXAMPLE)
    await first.call("profiles/push", PROFILE_EXAMPLE)
    await first.call("violations/send_overdue_to_collections", {"apiToken": TOKEN})

    second = await start(db_path=db)
    update = {"apiToken": TOKEN, "referenceID": pushed["reference_id"], "plate": "NEW"}
    assert (await second.call("permits/update", update)).body == pushed
    _error(await second.call("vehicles/push", VEHICLE_EXAMPLE), 9012)
    assert (await second.call("profiles/push", PROFILE_EXAMPLE)).body["reference_id"] == 1
    overdue = await second.call("violations/send_overdue_to_collections", {"apiToken": TOKEN})
    assert overdue.body["records"] == []


async def test_memory_state_is_per_server(start: Start) -> None:
    first = await start()
    pushed = (await first.call("permits/push", PUSH_EXAMPLE)).body
    second = await start()
    update = {"apiToken": TOKEN, "referenceID": pushed["reference_id"]}
    _error(await second.call("permits/update", update), 9009)


async def test_reset_forgets_records_and_reseeds_examples(api: Api) -> None:
    await api.call("permits/push", PUSH_EXAMPLE)
    await api.call("violations/send_overdue_to_collections", {"apiToken": TOKEN})
    await api.control("POST", "reset")
    assert (await api.control("GET", "permits"))["permits"] == []
    assert (await api.control("GET", "journal"))["entries"] == []
    overdue = await api.call("violations/send_overdue_to_collections", {"apiToken": TOKEN})
    assert len(overdue.body["records"]) == 1


# ------------------------------------------------------------------ faults


async def test_latency_fault_delays_the_answer(api: Api) -> None:
    await api.control("PUT", "faults", {"latency_ms": 120, "jitter_ms": 30})
    started = time.perf_counter()
    answer = await api.call("permits/stats", {"apiToken": TOKEN})
    elapsed = time.perf_counter() - started
    assert answer.status == 200
    assert elapsed >= 0.12  # how much longer a busy machine takes is not the sandbox's doing


async def test_latency_waits_without_blocking_other_calls(api: Api) -> None:
    await api.control("PUT", "faults", {"latency_ms": 300})
    answers = await asyncio.gather(
        *(api.call("permits/stats", {"apiToken": TOKEN}) for _ in range(40))
    )
    assert {a.status for a in answers} == {200}
    # The waits overlapped: from the first call received to the last answered took less than
    # the 40 waits one after another (12 s), the least a server waiting for one call at a
    # time could take, however fast the machine.
    spans = []
    for entry in (await api.control("GET", "journal"))["entries"]:
        if entry["endpoint"] == "permits/stats":
            received = datetime.fromisoformat(entry["time"]).timestamp()
            spans.append((received, received + entry["duration_ms"] / 1000))
    assert len(spans) == 40
    assert max(end for _, end in spans) - min(start for start, _ in spans) < 40 * 0.3


@pytest.mark.parametrize(("status", "retry_after"), [(503, 1), (429, 7)])
async def test_failure_fault_answers_status_with_retry_after(
    api: Api, status: int, retry_after: int
) -> None:
    await api.control(
        "PUT",
        "faults",
        {"failure_rate": 1.0, "failure_status": status, "retry_after_s": retry_after},
    )
    answer = await api.call("permits/push", PUSH_EXAMPLE)
    assert answer.status == status
    assert answer.headers["Retry-After"] == str(retry_after)
    assert "ErrorCode" not in answer.body
    assert (await api.control("GET", "permits"))["permits"] == []


async def test_failure_fault_with_error_code_answers_that_documented_error(api: Api) -> None:
    await api.control("PUT", "faults", {"fail_next": 1, "failure_error_code": 9002})
    answer = await api.call("permits/push", PUSH_EXAMPLE)
    assert answer.status == 403
    _error(answer, 9002)


async def test_fail_next_fails_exactly_that_many_calls(api: Api) -> None:
    await api.control("PUT", "faults", {"fail_next": 2})
    statuses = [(await api.call("permits/stats", {"apiToken": TOKEN})).status for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_faults_can_target_one_endpoint(api: Api) -> None:
    await api.control("PUT", "faults", {"failure_rate": 1.0, "endpoints": ["permits/push"]})
    assert (await api.call("permits/push", PUSH_EXAMPLE)).status == 503
    assert (await api.call("permits/stats", {"apiToken": TOKEN})).status == 200


async def test_hang_fault_never_answers_until_the_client_gives_up(api: Api) -> None:
    await api.control("PUT", "faults", {"hang_rate": 1.0, "endpoints": ["permits/stats"]})
    with pytest.raises(asyncio.TimeoutError):
        await api.call("permits/stats", {"apiToken": TOKEN}, timeout=0.3)
    assert (await api.call("permits/push", PUSH_EXAMPLE)).status == 200
    for _ in range(50):  # the hung call is journaled once the server sees the client go
        entries = (await api.control("GET", "journal?endpoint=permits/stats"))["entries"]
        if entries:
            break
        await asyncio.sleep(0.05)
    assert [(e["status"], e["fault"]) for e in entries] == [(None, "hang")]


async def test_after_apply_fault_applies_the_call_then_loses_the_answer(api: Api) -> None:
    await api.control("PUT", "faults", {"fail_next": 1, "after_apply": True})
    assert (await api.call("permits/push", PUSH_EXAMPLE)).status == 503
    assert len((await api.control("GET", "permits"))["permits"]) == 1


async def _html(api: Api, endpoint: str, body: Any) -> tuple[int, str, Any]:
    async with api.session.post(ENDPOINTS[endpoint].path(CLIENT), json=body) as response:
        return response.status, await response.text(), response.headers


async def test_html_fault_answers_a_200_maintenance_page_instead_of_the_controller(
    api: Api,
) -> None:
    await api.control("PUT", "faults", {"fail_next": 1, "failure_body": "html"})
    status, text, headers = await _html(api, "permits/push", PUSH_EXAMPLE)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert "maintenance" in text.lower()
    assert (await api.control("GET", "permits"))["permits"] == []  # not applied
    [entry] = (await api.control("GET", "journal?endpoint=permits/push"))["entries"]
    assert (entry["status"], entry["fault"]) == (200, "failure")
    # The next call is the Controller's again.
    assert (await api.call("permits/push", PUSH_EXAMPLE)).body["status"] == "success"


@pytest.mark.parametrize(("status", "words"), [(403, "403 Forbidden"), (503, "503")])
async def test_html_fault_with_another_status_is_an_html_error_page(
    api: Api, status: int, words: str
) -> None:
    await api.control(
        "PUT", "faults", {"failure_rate": 1.0, "failure_body": "html", "failure_status": status}
    )
    answer_status, text, headers = await _html(api, "permits/stats", {"apiToken": TOKEN})
    assert answer_status == status
    assert headers["Content-Type"].startswith("text/html")
    assert words in text
    assert "ErrorCode" not in text


async def test_html_fault_after_apply_stores_the_permit_then_answers_the_page(api: Api) -> None:
    await api.control(
        "PUT", "faults", {"fail_next": 1, "failure_body": "html", "after_apply": True}
    )
    status, text, _ = await _html(api, "permits/push", PUSH_EXAMPLE)
    assert status == 200 and "maintenance" in text.lower()
    assert len((await api.control("GET", "permits"))["permits"]) == 1  # applied


async def test_html_fault_at_a_rate_mixes_pages_and_answers(api: Api) -> None:
    await api.control("PUT", "faults", {"failure_rate": 0.5, "failure_body": "html", "seed": 7})
    kinds = set()
    for _ in range(30):
        status, _, headers = await _html(api, "permits/stats", {"apiToken": TOKEN})
        assert status == 200
        kinds.add(headers["Content-Type"].split(";")[0])
    assert kinds == {"text/html", "application/json"}


async def test_html_fault_from_the_environment(start: Start) -> None:
    env = {
        "PARKSTREAM_CONTROLLER_CLIENT": CLIENT,
        "PARKSTREAM_CONTROLLER_API_TOKEN": TOKEN,
        "PARKSTREAM_SANDBOX_FAULT_FAILURE_RATE": "1",
        "PARKSTREAM_SANDBOX_FAULT_FAILURE_BODY": "html",
        "PARKSTREAM_SANDBOX_FAULT_AFTER_APPLY": "true",
    }
    config = SandboxConfig.from_env(env)
    api = await start(**{k: getattr(config, k) for k in ("faults", "client", "api_token")})
    status, text, _ = await _html(api, "permits/push", PUSH_EXAMPLE)
    assert status == 200 and "maintenance" in text.lower()
    assert len((await api.control("GET", "permits"))["permits"]) == 1


async def test_the_client_reads_the_maintenance_page_as_a_lost_answer(api: Api) -> None:
    # The real client against the real server: retried (transient), never dead-lettered.
    await api.control(
        "PUT", "faults", {"fail_next": 1, "failure_body": "html", "after_apply": True}
    )
    await api.control("PUT", "clock", {"now": "2018-07-02T09:10:00"})  # the permit is live
    async with ControllerClient(api.url, CLIENT, TOKEN, timeout=5.0) as client:
        with pytest.raises(ControllerAnswerUnreadable) as caught:
            await client.push_permit(PERMIT_FIELDS)
        assert caught.value.transient and caught.value.status_code == 200
        assert "maintenance" in caught.value.snippet.lower()
        # Applied before the page: a lookup by plate shows it, as reconciliation expects.
        reply = await client.validate_plate(PERMIT_FIELDS["plate"])
    assert len((await api.control("GET", "permits"))["permits"]) == 1
    [permit] = plate_permits(reply.body)
    assert permit.expires == datetime(2018, 7, 2, 9, 30)


async def test_faults_from_environment_apply_from_the_start_and_after_reset(start: Start) -> None:
    env = {
        "PARKSTREAM_CONTROLLER_CLIENT": CLIENT,
        "PARKSTREAM_CONTROLLER_API_TOKEN": TOKEN,
        "PARKSTREAM_SANDBOX_FAULT_FAIL_NEXT": "1",
        "PARKSTREAM_SANDBOX_FAULT_FAILURE_STATUS": "429",
        "PARKSTREAM_SANDBOX_FAULT_RETRY_AFTER_S": "2",
    }
    config = SandboxConfig.from_env(env)
    api = await start(**{k: getattr(config, k) for k in ("faults", "client", "api_token")})
    first = await api.call("permits/stats", {"apiToken": TOKEN})
    assert (first.status, first.headers["Retry-After"]) == (429, "2")
    assert (await api.call("permits/stats", {"apiToken": TOKEN})).status == 200
    await api.control("POST", "reset")
    assert (await api.call("permits/stats", {"apiToken": TOKEN})).status == 429


@pytest.mark.parametrize(
    "body",
    [
        {"failure_rate": 2},
        {"latency_ms": "fast"},
        {"endpoints": ["permits/create"]},
        {"failure_error_code": 9999},
        {"hang": True},
        {"failure_body": "xml"},
        {"failure_body": "html", "failure_error_code": 9002},
        {"failure_status": 100},
    ],
)
async def test_invalid_fault_switches_are_refused_with_a_reason(api: Api, body: Any) -> None:
    answer = await api.raw("PUT", "/_sandbox/faults", json=body)
    assert answer.status == 400
    assert answer.body["error"]
    assert (await api.control("GET", "faults"))["failure_rate"] == 0.0


async def test_patch_merges_and_delete_clears_faults(api: Api) -> None:
    await api.control("PUT", "faults", {"latency_ms": 5})
    merged = await api.control("PATCH", "faults", {"failure_rate": 0.5})
    assert (merged["latency_ms"], merged["failure_rate"]) == (5.0, 0.5)
    cleared = await api.control("DELETE", "faults")
    assert cleared == FaultConfig().to_dict() | {"remaining_fail_next": 0}


def test_bad_environment_is_reported_per_variable() -> None:
    with pytest.raises(ValueError) as caught:
        SandboxConfig.from_env(
            {
                "PARKSTREAM_SANDBOX_FAULT_FAILURE_RATE": "often",
                "PARKSTREAM_SANDBOX_JOURNAL_SIZE": "many",
                "PARKSTREAM_SANDBOX_NOW": "yesterday",
            }
        )
    message = str(caught.value)
    for name in (
        "PARKSTREAM_SANDBOX_FAULT_FAILURE_RATE",
        "PARKSTREAM_SANDBOX_JOURNAL_SIZE",
        "PARKSTREAM_SANDBOX_NOW",
    ):
        assert name in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PARKSTREAM_SANDBOX_JOURNAL_SIZE", "many"),
        ("PARKSTREAM_SANDBOX_FAULT_LATENCY_MS", "fast"),
        ("PARKSTREAM_SANDBOX_TIMEZONE", "Mars/Olympus"),
        ("PARKSTREAM_SANDBOX_SEED_EXAMPLES", "perhaps"),
    ],
)
def test_parkstream_sandbox_with_a_bad_value_exits_with_one_line_naming_it(
    variable: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    done = subprocess.run(
        [sys.executable, "-m", "parkstream.cli", "sandbox"],
        env={**env, "PARKSTREAM_SANDBOX_PORT": "1", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"parkstream: bad setting: {variable}={value!r}: "), line


def test_config_repr_hides_the_token() -> None:
    assert TOKEN not in repr(SandboxConfig(client=CLIENT, api_token=TOKEN))


# ------------------------------------------------------------------ journal, logs, metrics


async def test_journal_records_every_call_with_the_token_masked(api: Api) -> None:
    await api.call("permits/push", PUSH_EXAMPLE)
    await api.call("validate/plate", {"api_token": TOKEN, "client": CLIENT, "plate": "X"})
    await api.raw(
        "POST",
        "/api/OC-TOMA/v1/permits/stats",
        data=f'{{"apiToken": "{OTHER_SECRET}", broken'.encode(),
        headers={"Content-Type": "application/json"},
    )
    entries = (await api.control("GET", "journal"))["entries"]
    assert [e["endpoint"] for e in entries] == ["permits/push", "validate/plate", "permits/stats"]
    push = entries[0]
    assert push["body"] == {**PUSH_EXAMPLE, "apiToken": "***"}
    assert (push["status"], push["answer"]["status"], push["path"]) == (
        200,
        "success",
        "/api/OC-TOMA/v1/permits/push",
    )
    assert entries[1]["body"]["api_token"] == "***"
    assert (entries[2]["status"], entries[2]["error_code"]) == (400, 9003)
    raw_journal = (await api.raw("GET", "/_sandbox/journal")).body
    assert TOKEN not in str(raw_journal)
    assert OTHER_SECRET not in str(raw_journal)
    later = (await api.control("GET", f"journal?since={entries[1]['seq']}"))["entries"]
    assert [e["seq"] for e in later] == [entries[2]["seq"]]


async def test_no_log_line_contains_a_token(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await api.call("permits/push", PUSH_EXAMPLE)
    await api.call("permits/push", {**PUSH_EXAMPLE, "apiToken": OTHER_SECRET})
    await api.call("validate/plate", {"api_token": TOKEN, "client": CLIENT, "plate": "X"})
    await api.control("PUT", "faults", {"fail_next": 1})
    await api.call("permits/stats", {"apiToken": TOKEN})
    await api.control("POST", "reset")
    assert any(r.name.startswith("sandbox") for r in caplog.records)
    for record in caplog.records:
        line = record.getMessage()
        assert TOKEN not in line
        assert OTHER_SECRET not in line


async def test_metrics_count_calls_by_endpoint_status_and_error_code(api: Api) -> None:
    await api.call("permits/push", {**PUSH_EXAMPLE, "apiToken": OTHER_SECRET})
    text = (await api.raw("GET", "/metrics")).body
    samples = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    labels = (("endpoint", "permits/push"), ("error_code", "9002"), ("status", "403"))
    assert ("parkstream_sandbox_requests_total", labels) in samples
    assert any(name == "parkstream_sandbox_request_duration_seconds_bucket" for name, _ in samples)


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.raw("GET", "/healthz")).body == {"status": "ok"}
    assert (await api.raw("GET", "/readyz")).body == {"status": "ready"}
