"""foundation.controller: what the Controller client sends, and how it reads every answer."""

import asyncio
import gzip
import json
import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from urllib.parse import quote, quote_plus

import aiohttp
import httpx
import pytest
import yarl
from httpx_aiohttp import AiohttpTransport
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from foundation.controller import (
    DEFAULT_TIMEOUT,
    ControllerClient,
    ControllerReply,
    classify,
    default_transport,
    parse_retry_after,
)
from foundation.errors import (
    ControllerAnswerUnreadable,
    ControllerConnectionError,
    ControllerRateLimited,
    ControllerRejected,
    ControllerServerError,
    ControllerTimeout,
    PermanentError,
    SchemaViolation,
    TransientError,
)
from schemas.controller import ENDPOINTS, ERROR_MESSAGES, plate_permits

BASE_URL = "https://controller.test"
CLIENT = "OC-TOMA"
TOKEN = "tok-3f9a1c7e-5b2d-4e8f-9a6b-1c2d3e4f5a6b-secret"
REF = "1a9b5375-cb75-4c71-9939-eeae550b09ac"
PERMIT = {
    "plate": "PL8RDR",
    "start_time": datetime(2018, 7, 2, 9, 0, tzinfo=UTC),
    "end_time": datetime(2018, 7, 2, 9, 30, tzinfo=UTC),
    "amount": Decimal("14.50"),
    "currency": "CAD",
    "zone": "Lot 4",
    "permit_no": "L4-1138",
}
PERMIT_SUCCESS = {"status": "success", "reference_id": REF, "InternalReferenceID": REF}
NOW = datetime(2026, 5, 9, 12, 0, 0, tzinfo=UTC)


class Recorder:
    """A MockTransport handler that answers one canned response and keeps the requests."""

    def __init__(self, status=200, body=PERMIT_SUCCESS, headers=None, raises=None):
        self.status, self.body, self.headers, self.raises = status, body, headers or {}, raises
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raises is not None:
            raise self.raises
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, content=self.body, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    @property
    def sent(self) -> dict:
        return json.loads(self.requests[-1].content)


def controller(recorder: Recorder, **kwargs) -> ControllerClient:
    return ControllerClient(
        BASE_URL, CLIENT, TOKEN, transport=httpx.MockTransport(recorder), **kwargs
    )


# --- success shapes ---------------------------------------------------------

SUCCESSES = [
    ("push_permit", (PERMIT,), "permits/push", PERMIT_SUCCESS, REF),
    (
        "update_permit",
        ({"reference_id": REF, "end_time": PERMIT["end_time"]},),
        "permits/update",
        PERMIT_SUCCESS,
        REF,
    ),
    ("delete_permit", (REF,), "permits/delete", PERMIT_SUCCESS, REF),
    (
        "permit_stats",
        (["Lot 4"],),
        "permits/stats",
        {"data": [{"type": "standard", "zone": "Lot 4", "total": "4"}]},
        None,
    ),
    (
        "push_vehicle",
        ({"plate": "PL8RDR", "plate_type": "Motorcycle", "prov": "MA"},),
        "vehicles/push",
        {"status": "success", "vehicle_id_id": "158", "warnings": []},
        "158",
    ),
    (
        "push_profile",
        ({"unique_id": "tester23", "login_source": "OPSCOM"},),
        "profiles/push",
        {"status": "success", "reference_id": 44},
        "44",
    ),
    (
        "list_user_types",
        (),
        "profiles/types/list",
        {"status": "success", "user_types": [{"id": "1", "type_name": "S", "ext_info": "S"}]},
        None,
    ),
    (
        "validate_plate",
        ("ABC123",),
        "validate/plate",
        {
            "error": 0,
            "data": {"response": "", "plate": "ABC123", "responseJSON": {}},
            "message": "",
        },
        None,
    ),
    (
        "send_overdue_to_collections",
        (),
        "violations/send_overdue_to_collections",
        {"records": [], "state": {}},
        None,
    ),
]


@pytest.mark.parametrize(
    ("method", "args", "endpoint", "answer", "reference_id"), SUCCESSES, ids=lambda v: v
)
async def test_documented_success_answer_becomes_a_reply(
    method, args, endpoint, answer, reference_id
):
    recorder = Recorder(body=answer)
    async with controller(recorder) as client:
        reply = await getattr(client, method)(*args)
    assert isinstance(reply, ControllerReply)
    assert (reply.endpoint, reply.status_code, reply.body) == (endpoint, 200, answer)
    assert reply.reference_id == reference_id
    assert reply.elapsed_seconds >= 0
    assert recorder.requests[0].method == "POST"
    assert recorder.requests[0].url == BASE_URL + ENDPOINTS[endpoint].path(CLIENT)


def test_reference_id_is_always_a_string():
    reply = classify("profiles/push", 200, {}, b'{"status":"success","reference_id":44}')
    assert reply.reference_id == "44"


# --- the request ------------------------------------------------------------


async def test_token_is_added_under_the_endpoint_token_field():
    recorder = Recorder()
    async with controller(recorder) as client:
        await client.push_permit(PERMIT)
    assert recorder.sent["apiToken"] == TOKEN
    assert "api_token" not in recorder.sent


async def test_validate_plate_sends_api_token_and_client_in_the_body_to_the_clientless_path():
    recorder = Recorder(body=SUCCESSES[7][3])
    async with controller(recorder) as client:
        await client.validate_plate("ABC123")
    request = recorder.requests[0]
    assert request.url.path == "/api/v1/validate/plate"
    assert recorder.sent == {"api_token": TOKEN, "client": CLIENT, "plate": "ABC123"}


async def test_canonical_fields_go_out_under_the_contract_wire_names():
    recorder = Recorder()
    async with controller(recorder) as client:
        await client.push_permit(PERMIT)
    expected = ENDPOINTS["permits/push"].to_wire(PERMIT) | {"apiToken": TOKEN}
    assert recorder.sent == expected
    # The documented example request, name for name.
    assert recorder.sent["LicencePlate"] == "PL8RDR"
    assert recorder.sent["startTime"] == "2018-07-02T09:00:00"
    assert recorder.sent["endTime"] == "2018-07-02T09:30:00"
    assert recorder.sent["Amount"] == "14.50"
    assert recorder.sent["CurrencyID"] == "CAD"
    assert recorder.sent["permitNo"] == "L4-1138"


async def test_request_is_json_to_the_client_path():
    recorder = Recorder()
    async with controller(recorder) as client:
        await client.push_permit(PERMIT)
    request = recorder.requests[0]
    assert str(request.url) == f"{BASE_URL}/api/{CLIENT}/v1/permits/push"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"


async def test_every_request_carries_all_four_timeouts():
    recorder = Recorder()
    async with controller(recorder) as client:
        await client.push_permit(PERMIT)
    timeouts = recorder.requests[0].extensions["timeout"]
    assert set(timeouts) == {"connect", "read", "write", "pool"}
    assert all(isinstance(value, float) and value > 0 for value in timeouts.values())
    assert timeouts == DEFAULT_TIMEOUT.as_dict()


def test_a_timeout_left_unset_is_refused():
    with pytest.raises(ValueError, match="read"):
        controller(Recorder(), timeout=httpx.Timeout(5.0, read=None))


async def test_unknown_canonical_field_is_a_schema_violation_and_nothing_is_sent():
    recorder = Recorder()
    async with controller(recorder) as client:
        with pytest.raises(SchemaViolation, match="licence_plate"):
            await client.push_permit({**PERMIT, "licence_plate": "X"})
    assert recorder.requests == []


async def test_float_amount_is_a_schema_violation():
    async with controller(Recorder()) as client:
        with pytest.raises(SchemaViolation, match="float"):
            await client.push_permit({**PERMIT, "amount": 14.5})


async def test_unknown_endpoint_is_a_programming_error():
    async with controller(Recorder()) as client:
        with pytest.raises(ValueError, match="permits/create"):
            await client.call("permits/create", {})


# --- rejections ---------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 404, 422, 500])
async def test_error_code_is_a_rejection_whatever_the_http_status(status):
    recorder = Recorder(status, {"ErrorCode": 9009, "ErrorMessage": ERROR_MESSAGES[9009]})
    async with controller(recorder) as client:
        with pytest.raises(ControllerRejected) as caught:
            await client.delete_permit(REF)
    assert caught.value.error_code == 9009
    assert caught.value.reason == "Record not found."
    assert isinstance(caught.value, PermanentError)


def test_validate_plate_error_envelope_is_a_rejection():
    body = json.dumps({"error": 9006, "data": {}, "message": "Plate lookup failed"}).encode()
    with pytest.raises(ControllerRejected) as caught:
        classify("validate/plate", 200, {}, body)
    assert (caught.value.error_code, caught.value.reason) == (9006, "Plate lookup failed")


@given(
    status=st.integers(min_value=100, max_value=599),
    code=st.sampled_from(sorted(ERROR_MESSAGES)),
)
def test_every_documented_code_is_a_rejection_in_any_http_status(status, code):
    body = json.dumps({"ErrorCode": code, "ErrorMessage": ERROR_MESSAGES[code]}).encode()
    with pytest.raises(ControllerRejected) as caught:
        classify("permits/push", status, {}, body)
    assert caught.value.error_code == code
    assert caught.value.permanent


@pytest.mark.parametrize(
    "body",
    [
        {"ErrorCode": 9999, "ErrorMessage": "Something went wrong."},
        {"ErrorCode": 0, "ErrorMessage": "OK"},
        {"ErrorCode": 8999, "ErrorMessage": "Maintenance."},
        {"ErrorCode": "9006", "ErrorMessage": ERROR_MESSAGES[9006]},
        {"ErrorCode": True, "ErrorMessage": "x"},
        {"ErrorCode": 9006.0, "ErrorMessage": ERROR_MESSAGES[9006]},
    ],
    ids=["9999", "zero", "8999", "string", "boolean", "float"],
)
@pytest.mark.parametrize("status", [200, 400, 422])
def test_an_undocumented_error_code_is_a_lost_answer_not_a_refusal(body, status):
    # docs/controller-contract.md, decision 37.
    with pytest.raises(ControllerAnswerUnreadable) as caught:
        classify("permits/push", status, {}, json.dumps(body).encode())
    assert caught.value.transient and not caught.value.permanent
    assert caught.value.status_code == status


@pytest.mark.parametrize("code", [7, 0.5, "9006", 9999])
def test_validate_plate_envelope_with_an_undocumented_code_is_a_lost_answer(code):
    body = json.dumps({"error": code, "data": {}, "message": "Plate lookup failed"}).encode()
    with pytest.raises(ControllerAnswerUnreadable):
        classify("validate/plate", 200, {}, body)


# --- transient answers --------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_5xx_without_error_code_is_a_server_error(status):
    recorder = Recorder(status, b"<html>Bad Gateway</html>")
    async with controller(recorder) as client:
        with pytest.raises(ControllerServerError) as caught:
            await client.push_permit(PERMIT)
    assert caught.value.status_code == status
    assert caught.value.retry_after is None
    assert isinstance(caught.value, TransientError)


async def test_503_without_retry_after_is_a_server_error():
    recorder = Recorder(503, b"Service Unavailable")
    async with controller(recorder) as client:
        with pytest.raises(ControllerServerError) as caught:
            await client.push_permit(PERMIT)
    assert not isinstance(caught.value, ControllerRateLimited)
    assert caught.value.status_code == 503


async def test_503_with_retry_after_is_rate_limiting():
    recorder = Recorder(503, b"down for maintenance", headers={"Retry-After": "7"})
    async with controller(recorder) as client:
        with pytest.raises(ControllerRateLimited) as caught:
            await client.push_permit(PERMIT)
    assert (caught.value.status_code, caught.value.retry_after) == (503, 7.0)


async def test_429_with_seconds_waits_that_long():
    recorder = Recorder(429, b"slow down", headers={"Retry-After": "120"})
    async with controller(recorder) as client:
        with pytest.raises(ControllerRateLimited) as caught:
            await client.push_permit(PERMIT)
    assert (caught.value.status_code, caught.value.retry_after) == (429, 120.0)


def test_429_with_http_date_waits_until_that_date():
    headers = {"retry-after": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}
    with pytest.raises(ControllerRateLimited) as caught:
        classify("permits/push", 429, headers, b"", now=NOW)
    assert caught.value.retry_after == 90.0


def test_429_without_retry_after_leaves_the_wait_to_the_backoff():
    with pytest.raises(ControllerRateLimited) as caught:
        classify("permits/push", 429, {}, b"")
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        (None, None),
        ("Sat, 09 May 2026 11:00:00 GMT", 0.0),  # in the past
        ("Sat, 09 May 2026 12:00:30 GMT", 30.0),
    ],
)
def test_retry_after_values(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_delta_seconds_round_trip(seconds):
    assert parse_retry_after(str(seconds)) == float(seconds)


# --- transport failures -------------------------------------------------------


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")]
)
async def test_httpx_timeouts_are_controller_timeouts(exc):
    async with controller(Recorder(raises=exc)) as client:
        with pytest.raises(ControllerTimeout) as caught:
            await client.push_permit(PERMIT)
    assert isinstance(caught.value, TransientError)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("reset"),
    ],
)
async def test_connect_and_protocol_errors_are_connection_errors(exc):
    async with controller(Recorder(raises=exc)) as client:
        with pytest.raises(ControllerConnectionError):
            await client.push_permit(PERMIT)


def _aiohttp_mapped(cause: BaseException) -> httpx.ConnectTimeout:
    # What httpx-aiohttp raises: every aiohttp connection error becomes ConnectTimeout.
    exc = httpx.ConnectTimeout(str(cause))
    exc.__cause__ = cause
    return exc


async def test_refused_connection_reported_as_connect_timeout_by_httpx_aiohttp_is_a_connection_error():
    exc = _aiohttp_mapped(aiohttp.ServerDisconnectedError())
    async with controller(Recorder(raises=exc)) as client:
        with pytest.raises(ControllerConnectionError):
            await client.push_permit(PERMIT)


async def test_real_aiohttp_timeout_stays_a_timeout():
    exc = _aiohttp_mapped(aiohttp.ConnectionTimeoutError("connect timed out"))
    async with controller(Recorder(raises=exc)) as client:
        with pytest.raises(ControllerTimeout):
            await client.push_permit(PERMIT)


async def test_unmapped_aiohttp_error_is_a_connection_error():
    # httpx-aiohttp lets aiohttp's "bad status line" through unmapped.
    url = yarl.URL(BASE_URL)
    info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    exc = aiohttp.ClientResponseError(info, (), status=400, message="Bad status line")
    async with controller(Recorder(raises=exc)) as client:
        with pytest.raises(ControllerConnectionError):
            await client.push_permit(PERMIT)


async def test_connection_refused_through_the_default_transport_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the call: nothing listens
    async with ControllerClient(f"http://127.0.0.1:{port}", CLIENT, TOKEN, timeout=5.0) as client:
        with pytest.raises(ControllerConnectionError) as caught:
            await client.push_permit(PERMIT)
    assert TOKEN not in str(caught.value)


# --- lost answers: neither the documented success nor a documented refusal -----------

MAINTENANCE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Down for maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>The site is under maintenance.</p></body></html>"
)
FIREWALL_403 = b"<html><head><title>403 Forbidden</title></head><body>Request blocked</body></html>"


async def test_a_200_html_maintenance_page_is_a_lost_answer_to_retry():
    recorder = Recorder(200, MAINTENANCE_PAGE, headers={"Content-Type": "text/html"})
    async with controller(recorder) as client:
        with pytest.raises(ControllerAnswerUnreadable) as caught:
            await client.push_permit(PERMIT)
    assert isinstance(caught.value, TransientError)
    assert not isinstance(caught.value, PermanentError)
    assert caught.value.status_code == 200
    assert "maintenance" in caught.value.snippet
    assert "maintenance" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (403, FIREWALL_403, {"Content-Type": "text/html"}),
        (401, b"<html>Unauthorized</html>", {}),
        (408, b"Request Timeout", {}),
        (404, b"<html>Not Found</html>", {}),
        (302, b"", {"Location": "https://login.example/sso"}),
        (301, b"<html>Moved</html>", {"Location": "https://controller.test/v2/"}),
        (204, b"", {}),
        (100, b"", {}),
        (200, b"", {}),
        (200, b"null", {}),
        (200, b"\xff\xfe not utf-8", {}),
        (200, b"[" * 100_000, {}),
        (200, b'{"a":' * 50_000, {}),
        (200, b"[" * 100_000 + b"]" * 100_000, {}),
    ],
    ids=[
        "html-403",
        "html-401",
        "408",
        "html-404",
        "redirect-302",
        "redirect-301",
        "204-empty",
        "100",
        "200-empty",
        "200-null",
        "200-not-utf8",
        "deep-open-array",
        "deep-open-object",
        "deep-closed-array",
    ],
)
def test_an_answer_that_is_not_a_controller_answer_is_lost_not_permanent(status, body, headers):
    with pytest.raises(ControllerAnswerUnreadable) as caught:
        classify("permits/push", status, headers, body)
    assert caught.value.status_code == status
    assert caught.value.transient


@pytest.mark.parametrize(
    ("endpoint", "status", "body"),
    [
        ("permits/push", 200, {"status": "error"}),
        ("permits/push", 200, {"status": "success"}),  # without its reference id
        ("permits/push", 200, {"status": "success", "reference_id": ""}),
        ("permits/push", 200, {"status": "success", "reference_id": "   "}),
        ("permits/push", 200, {"status": "success", "reference_id": None}),
        ("permits/push", 200, {"status": "success", "reference_id": ["x"]}),
        ("permits/push", 200, {"status": "success", "reference_id": {"id": 1}}),
        ("permits/push", 200, {"status": "success", "reference_id": True}),
        ("permits/push", 200, ["status", "success"]),
        ("permits/push", 404, PERMIT_SUCCESS),
        ("permits/push", 302, PERMIT_SUCCESS),
        ("vehicles/push", 200, {"status": "success", "vehicle_id_id": ""}),
        ("profiles/push", 200, {"status": "success"}),
        ("profiles/types/list", 200, {"status": "success", "user_types": "none"}),
        ("profiles/types/list", 200, {"status": "success", "user_types": ["Student"]}),
        ("permits/stats", 200, {"data": {"zone1": 4}}),
        ("permits/stats", 200, {"data": [4]}),
        ("violations/send_overdue_to_collections", 200, {"records": None}),
    ],
)
def test_a_json_answer_that_is_not_the_documented_success_is_lost(endpoint, status, body):
    with pytest.raises(ControllerAnswerUnreadable):
        classify(endpoint, status, {}, json.dumps(body).encode())


def _plate_answer(response_json) -> bytes:
    return json.dumps(
        {"error": 0, "data": {"response": "", "plate": "ABC123", "responseJSON": response_json}}
    ).encode()


def test_validate_plate_answer_without_response_json_is_lost_not_a_crash():
    body = json.dumps({"error": 0, "data": {"response": "", "plate": "ABC123"}}).encode()
    with pytest.raises(ControllerAnswerUnreadable):
        classify("validate/plate", 200, {}, body)


@pytest.mark.parametrize(
    "response_json",
    [
        "none",
        5,
        None,
        {"permits": "BIKE"},
        {"permits": {"expires": "2025-04-30 23:59:59", "type": "standard", "shortName": "B"}},
        {"permits": [{"type": "standard", "shortName": "BIKE"}]},
        {"permits": [{"expires": "2025-04-30T23:59:59", "type": "standard", "shortName": "B"}]},
        {"permits": [{"expires": "30/04/2025 23:59", "type": "standard", "shortName": "B"}]},
        {"permits": [{"expires": "2025-04-31 23:59:59", "type": "standard", "shortName": "B"}]},
        {"permits": [{"expires": 1746057599, "type": "standard", "shortName": "B"}]},
        {"permits": [{"expires": "2025-04-30 23:59:59", "type": 7, "shortName": "B"}]},
        {"permits": ["standard: BIKE"]},
    ],
    ids=[
        "string",
        "number",
        "null",
        "permits-string",
        "permits-object",
        "no-expires",
        "iso-expires",
        "other-format",
        "no-such-day",
        "epoch-expires",
        "type-number",
        "entry-string",
    ],
)
def test_validate_plate_answer_plate_permits_cannot_read_is_lost(response_json):
    with pytest.raises(ControllerAnswerUnreadable):
        classify("validate/plate", 200, {}, _plate_answer(response_json))


@pytest.mark.parametrize(
    ("response_json", "count"),
    [
        ({}, 0),
        ([], 0),  # PHP's json_encode of an empty array
        ({"alarm": "Wanted."}, 0),
        ({"permits": []}, 0),
        (
            {"permits": [{"expires": "2025-04-30 23:59:59", "type": "standard", "shortName": "B"}]},
            1,
        ),
    ],
)
def test_a_readable_validate_plate_answer_is_a_reply(response_json, count):
    reply = classify("validate/plate", 200, {}, _plate_answer(response_json))
    assert len(plate_permits(reply.body)) == count


def test_a_non_ascii_retry_after_header_is_ignored_not_a_crash():
    with pytest.raises(ControllerRateLimited) as caught:
        classify("permits/push", 429, {"Retry-After": "bientôt"}, b"")
    assert caught.value.retry_after is None


# --- classify never raises anything but a classified outcome (hypothesis) ------------

ERROR_TREE = (
    ControllerAnswerUnreadable,
    ControllerRateLimited,
    ControllerRejected,
    ControllerServerError,
)
HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40)
HEADERS = st.one_of(
    st.dictionaries(HEADER_TEXT, HEADER_TEXT, max_size=4),
    st.lists(
        st.tuples(st.sampled_from(["Retry-After", "retry-after", "Content-Type"]), HEADER_TEXT)
    ),
)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_TREES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


def _assert_classified(endpoint: str, status: int, headers, body: bytes) -> None:
    try:
        reply = classify(endpoint, status, headers, body, now=NOW)
    except ERROR_TREE as exc:
        assert isinstance(exc, TransientError | PermanentError)
        if isinstance(exc, ControllerRejected):
            assert exc.error_code in ERROR_MESSAGES
        return
    assert isinstance(reply, ControllerReply)
    assert 200 <= reply.status_code < 300
    if endpoint == "validate/plate":
        plate_permits(reply.body)  # reconciliation can always read it


@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    status=st.integers(min_value=100, max_value=599),
    headers=HEADERS,
    body=st.binary(max_size=300),
)
def test_any_status_headers_and_bytes_are_a_classified_outcome(endpoint, status, headers, body):
    _assert_classified(endpoint, status, headers, body)


@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    status=st.integers(min_value=100, max_value=599),
    tree=JSON_TREES,
)
def test_any_json_tree_is_a_classified_outcome(endpoint, status, tree):
    _assert_classified(endpoint, status, {}, json.dumps(tree).encode())


@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    depth=st.integers(min_value=1, max_value=200_000),
    opener=st.sampled_from([b"[", b'{"a":', b'{"data":', b'{"ErrorCode":']),
    closed=st.booleans(),
)
def test_deeply_nested_json_is_a_classified_outcome(endpoint, depth, opener, closed):
    closer = {b"[": b"]"}.get(opener, b"}")
    body = opener * depth + ((b"0" + closer * depth) if closed else b"")
    _assert_classified(endpoint, 200, {}, body)


DOCUMENTED_ANSWERS = {endpoint: answer for _, _, endpoint, answer, _ in SUCCESSES} | {
    "validate/plate": json.loads(
        _plate_answer(
            {
                "permits": [
                    {"expires": "2025-04-30 23:59:59", "type": "standard", "shortName": "BIKE"}
                ],
                "dntt": [
                    {
                        "notes": "CLEAR",
                        "start": "2024-11-15 00:00:00",
                        "location": "Main Campus",
                        "end": "2024-11-15 23:59:00",
                    }
                ],
                "alarm": "Wanted to talk with.",
            }
        )
    )
}


def _paths(value, prefix=()):
    """Every path to a value inside a JSON tree (the root is the empty path)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replaced(tree, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(tree))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return copy


def _deleted(tree, path):
    copy = json.loads(json.dumps(tree))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return copy


@given(data=st.data(), endpoint=st.sampled_from(sorted(DOCUMENTED_ANSWERS)))
def test_mutated_documented_answers_are_a_classified_outcome(data, endpoint):
    answer = DOCUMENTED_ANSWERS[endpoint]
    path = data.draw(st.sampled_from(list(_paths(answer))), label="path")
    if path and data.draw(st.booleans(), label="delete"):
        mutated = _deleted(answer, path)
    else:
        mutated = _replaced(answer, path, data.draw(JSON_TREES, label="new value"))
    status = data.draw(st.sampled_from([200, 201, 400, 404, 422, 500]), label="status")
    _assert_classified(endpoint, status, {}, json.dumps(mutated).encode())


# --- the call path: whatever the transport raises while reading is transient -----------


async def _raw_server(answer: bytes):
    """A loopback TCP server that reads a request and writes ``answer`` bytes, then closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def _http(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


RAW_ANSWERS = {
    "body-cut-mid-way": _http(
        "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 500\n",
        b'{"status": "success", "refer',
    ),
    "bad-gzip": _http(
        "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: 12\n", b"not gzipped!"
    ),
    "bad-deflate": _http(
        "HTTP/1.1 200 OK\nContent-Encoding: deflate\nContent-Length: 12\n", b"not deflate!"
    ),
    "truncated-gzip": _http(
        "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: 10\n",
        gzip.compress(json.dumps(PERMIT_SUCCESS).encode())[:10],
    ),
    "bad-chunked": _http("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", b"zz\r\nnot a chunk\r\n"),
    "chunked-cut": _http("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", b'40\r\n{"status"'),
    "no-status-line": b"garbage\r\n\r\n",
    "closed-before-headers": b"",
    "status-999": _http("HTTP/1.1 999 Odd\nContent-Length: 2\n", b"{}"),
    "non-utf8-reason": _http("HTTP/1.1 200 \xff\xfe\nContent-Length: 2\n", b"{}"),
    "non-ascii-header": _http("HTTP/1.1 429 Too Many\nRetry-After: \xe9\xe9\nContent-Length: 0\n"),
    "huge-header": _http("HTTP/1.1 200 OK\nX-Big: " + "a" * 70_000 + "\nContent-Length: 0\n"),
}


@pytest.mark.parametrize("answer", RAW_ANSWERS.values(), ids=RAW_ANSWERS.keys())
async def test_a_body_that_cannot_be_read_is_a_transient_error_never_a_crash(answer):
    server = await _raw_server(answer)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ControllerClient(
            f"http://127.0.0.1:{port}", CLIENT, TOKEN, timeout=5.0
        ) as client:
            with pytest.raises(TransientError) as caught:
                await client.push_permit(PERMIT)
    finally:
        server.close()
        await server.wait_closed()
    assert TOKEN not in str(caught.value)


# --- the token stays secret ---------------------------------------------------


def test_repr_hides_the_token():
    client = controller(Recorder())
    assert TOKEN not in repr(client)
    assert CLIENT in repr(client)


@pytest.mark.parametrize(
    "recorder",
    [
        Recorder(),
        Recorder(422, {"ErrorCode": 9002, "ErrorMessage": f"token {TOKEN} lacks permission"}),
        Recorder(200, json.dumps({"echo": {"apiToken": TOKEN}}).encode()),
        Recorder(500, f"Fatal error near apiToken={TOKEN}".encode()),
        Recorder(429, b"", headers={"Retry-After": "1"}),
        Recorder(raises=httpx.ConnectError(f"cannot connect for {TOKEN}")),
        Recorder(raises=httpx.ReadTimeout("slow")),
    ],
    ids=["success", "rejected", "unexpected", "server-error", "rate-limited", "connect", "timeout"],
)
async def test_token_never_reaches_logs_or_error_messages(recorder, caplog):
    caplog.set_level(logging.DEBUG)
    async with controller(recorder) as client:
        try:
            await client.push_permit(PERMIT)
        except Exception as exc:
            assert TOKEN not in str(exc)
            assert TOKEN not in repr(exc)
            assert TOKEN not in getattr(exc, "reason", "")
    assert recorder.sent["apiToken"] == TOKEN  # it was sent, and only sent
    assert caplog.records, "the call logs its outcome"
    assert TOKEN not in caplog.text


def _token_forms(token: str) -> set[str]:
    """Every form the token may be echoed in: raw, JSON-escaped, URL-encoded (any hex case)."""
    forms = {
        token,
        json.dumps(token)[1:-1],
        json.dumps(token, ensure_ascii=False)[1:-1],
        json.dumps(token).replace("/", "\\/")[1:-1],
        json.dumps(token, ensure_ascii=False).replace("/", "\\/")[1:-1],
        quote(token),
        quote(token, safe=""),
        quote_plus(token),
        quote_plus(token, safe="/"),
    }
    forms |= {_percent_case(form, str.lower) for form in forms if "%" in form}
    forms |= {_percent_case(form, str.upper) for form in forms if "%" in form}
    forms |= {_unicode_upper(form) for form in forms if "\\u" in form}
    return {form for form in forms if form}


def _unicode_upper(form: str) -> str:
    return re.sub(r"\\u[0-9a-fA-F]{4}", lambda m: "\\u" + m.group(0)[2:].upper(), form)


def _percent_case(form: str, case) -> str:
    """``form`` with its percent-escapes (only) in another case: ``%2f`` for ``%2F``."""
    return re.sub(r"%[0-9a-fA-F]{2}", lambda m: case(m.group(0)), form)


def _echoes(token: str) -> list[str]:
    """The token as a Controller might echo it (each a form _token_forms knows)."""
    return [
        token,
        json.dumps(token)[1:-1],
        json.dumps(token).replace("/", "\\/")[1:-1],
        json.dumps(token, ensure_ascii=False)[1:-1],
        _unicode_upper(json.dumps(token)[1:-1]),
        quote(token, safe=""),
        _percent_case(quote(token, safe=""), str.lower),
        quote_plus(token),
    ]


def _outputs(outcome) -> list[str]:
    """Every text a classified outcome carries out of the client."""
    if isinstance(outcome, ControllerReply):
        texts = [outcome.reference_id or ""]
        stack = [outcome.body]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return texts
    return [str(outcome), *map(str, outcome.args)] + [
        str(getattr(outcome, name))
        for name in ("reason", "message", "snippet")
        if getattr(outcome, name, None) is not None
    ]


def _leaked(token: str, outcome) -> list[str]:
    forms = _token_forms(token)
    return [form for text in _outputs(outcome) for form in forms if form in text]


def _classified(*args, **kwargs):
    try:
        return classify(*args, **kwargs)
    except (TransientError, PermanentError) as exc:
        return exc


ODD_TOKEN = 'tok/3f9a"1c7e-é-secret ü+&=%'


@pytest.mark.parametrize("echo", _echoes(ODD_TOKEN), ids=lambda e: e[:24])
@pytest.mark.parametrize(
    ("status", "template"),
    [
        (422, '{"ErrorCode": 9002, "ErrorMessage": "token %s lacks permission"}'),
        (200, '{"error": 9002, "data": {}, "message": "token %s"}'),
        (403, "<html><body>Blocked request with apiToken=%s</body></html>"),
        (200, '{"status": "error", "echo": "%s"}'),
        (200, '{"status": "success", "reference_id": "r-1", "echo": "%s"}'),
        (302, "Location: https://sso.example/?next=%s"),
    ],
    ids=["error-message", "plate-envelope", "html", "json-echo", "success-echo", "redirect"],
)
def test_every_echoed_form_of_the_token_is_masked(echo, status, template):
    endpoint = "validate/plate" if "error" in template and "ErrorCode" not in template else None
    body = (template % echo).encode()
    outcome = _classified(endpoint or "permits/push", status, {}, body, secrets=[ODD_TOKEN])
    assert _leaked(ODD_TOKEN, outcome) == []


# Tokens as a Controller may issue them, and stranger: "*" is left out, it is the mask.
TOKENS = st.text(
    st.characters(codec="utf-8", exclude_characters="*", exclude_categories=["Cs"]),
    min_size=8,
    max_size=50,
)
SURROUNDING = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@settings(max_examples=300)
@given(
    token=TOKENS,
    before=SURROUNDING,
    after=SURROUNDING,
    form=st.integers(min_value=0, max_value=7),
    shape=st.sampled_from(["error-message", "plate-envelope", "text", "success-echo"]),
    status=st.sampled_from([200, 302, 403, 422]),
)
def test_no_encoded_form_of_any_token_survives_classification(
    token, before, after, form, shape, status
):
    echo = _echoes(token)[form]
    text = before + echo + after
    endpoint = "permits/push"
    if shape == "error-message":
        body = json.dumps({"ErrorCode": 9002, "ErrorMessage": text}).encode()
    elif shape == "plate-envelope":
        endpoint = "validate/plate"
        body = json.dumps({"error": 9006, "data": {}, "message": text}).encode()
    elif shape == "success-echo":
        body = json.dumps({**PERMIT_SUCCESS, "echo": text}, ensure_ascii=False).encode()
    else:
        body = text.encode()
    outcome = _classified(endpoint, status, {}, body, secrets=[token])
    assert _leaked(token, outcome) == []


async def test_log_lines_are_key_value_pairs(caplog):
    caplog.set_level(logging.DEBUG, logger="foundation.controller")
    recorder = Recorder(422, {"ErrorCode": 9006, "ErrorMessage": ERROR_MESSAGES[9006]})
    async with controller(recorder) as client:
        with pytest.raises(ControllerRejected):
            await client.push_permit(PERMIT)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "foundation.controller"]
    assert 'endpoint="permits/push"' in line
    assert 'status="422"' in line
    assert 'error_code="9006"' in line
    assert 'elapsed="' in line


# --- lifecycle and transport ----------------------------------------------------


async def test_leaving_the_context_closes_the_transport():
    closed = []

    class Transport(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    async with ControllerClient(BASE_URL, CLIENT, TOKEN, transport=Transport(Recorder())):
        pass
    assert closed == [True]


def test_default_transport_is_httpx_over_aiohttp_with_the_connection_limit():
    transport = default_transport(max_connections=32)
    assert isinstance(transport, AiohttpTransport)
    assert transport.limits.max_connections == 32


# --- a request that never left cannot have been applied ----------------------------------


async def test_a_refused_connection_is_known_never_sent_so_its_retry_is_no_resend():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens: the Controller is down
    async with ControllerClient(f"http://127.0.0.1:{port}", CLIENT, TOKEN, timeout=5.0) as client:
        with pytest.raises(ControllerConnectionError) as caught:
            await client.push_permit(PERMIT)
    assert caught.value.never_sent


async def test_a_request_sent_but_never_answered_may_have_been_applied():
    async def silent(reader, writer):
        await reader.read(65536)  # takes the request, never answers
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        timeout = httpx.Timeout(connect=2.0, read=0.3, write=2.0, pool=2.0)
        async with ControllerClient(
            f"http://127.0.0.1:{port}", CLIENT, TOKEN, timeout=timeout
        ) as client:
            with pytest.raises(TransientError) as caught:
                await client.push_permit(PERMIT)
    finally:
        server.close()
    assert not caught.value.never_sent  # a lost answer: looked up before it is sent again


@pytest.mark.parametrize(
    ("exc", "never_sent"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.PoolTimeout("no free connection"), True),
        (httpx.ReadTimeout("no answer"), False),
        (httpx.RemoteProtocolError("server disconnected"), False),
        (_aiohttp_mapped(aiohttp.ServerDisconnectedError()), False),
        (_aiohttp_mapped(aiohttp.ConnectionTimeoutError("connect timed out")), True),
    ],
)
async def test_whether_a_failed_request_left_is_known_from_the_error(exc, never_sent):
    async with controller(Recorder(raises=exc)) as client:
        with pytest.raises(TransientError) as caught:
            await client.push_permit(PERMIT)
    assert caught.value.never_sent is never_sent


# --- relay: the gateway's pass-through ----------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (200, {"status": "success", "data": []}, {}),
        (400, {"ErrorCode": 9002, "ErrorMessage": "Invalid API token."}, {}),
        (503, b"<html>maintenance</html>", {"Retry-After": "7"}),
    ],
)
async def test_relay_returns_any_answer_as_it_came(status, body, headers) -> None:
    recorder = Recorder(status=status, body=body, headers=headers)
    async with controller(recorder) as client:
        answer = await client.relay("validate/plate", {"plate": "PL8RDR"})
    assert answer.status_code == status
    assert answer.body == (body if isinstance(body, bytes) else recorder_body(body))
    assert answer.retry_after == headers.get("Retry-After")
    # The same wire body as a classified call: parkstream's token and client code.
    assert recorder.sent == {"plate": "PL8RDR", "client": CLIENT, "api_token": TOKEN}


def recorder_body(body: dict) -> bytes:
    return httpx.Response(200, json=body).content


async def test_relay_masks_the_token_the_controller_echoes_and_fails_transiently() -> None:
    echo = Recorder(status=401, body=f'{{"ErrorCode": 9002, "echo": "{TOKEN}"}}'.encode())
    async with controller(echo) as client:
        answer = await client.relay("permits/stats", {})
    assert TOKEN not in answer.body.decode() and b"9002" in answer.body
    refused = Recorder(raises=httpx.ConnectError("refused"))
    async with controller(refused) as client:
        with pytest.raises(TransientError):
            await client.relay("permits/stats", {})
