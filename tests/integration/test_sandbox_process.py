"""The sandbox as its own process: keep-alive answers, no 500 for any input, no token in its log."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.controller import ENDPOINTS
from tests.integration.conftest import SandboxProcess

KEEPALIVE_CALLS = 50


@pytest.fixture(scope="module")
def http_client(sandbox_process: SandboxProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_process.url, timeout=5) as client:
        yield client


def _connection(sandbox: SandboxProcess) -> http.client.HTTPConnection:
    url = urlsplit(sandbox.url)
    return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)


def test_keep_alive_connections_are_reused_for_every_answer(
    sandbox_process: SandboxProcess,
) -> None:
    # The answer time on such a connection (the Nagle + delayed-ACK trap) is measured by
    # `make bench` (benchmarks/keepalive.py), not asserted here.
    conn = _connection(sandbox_process)
    path = ENDPOINTS["permits/stats"].path(sandbox_process.client)
    body = json.dumps({"apiToken": sandbox_process.api_token}).encode()
    headers = {"Content-Type": "application/json"}
    try:
        conn.request("POST", path, body=body, headers=headers)
        conn.getresponse().read()
        sock = conn.sock
        for _ in range(KEEPALIVE_CALLS):
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        assert conn.sock is sock  # one connection throughout
    finally:
        conn.close()


def test_process_log_never_contains_a_token(
    sandbox_process: SandboxProcess, http_client: httpx.Client
) -> None:
    other = "a-token-of-another-client-9f2e"
    for token in (sandbox_process.api_token, other):
        http_client.post(
            ENDPOINTS["permits/push"].path("OC-TOMA"),
            json={"apiToken": token, "LicencePlate": "LOGCHECK"},
        )
    http_client.put("/_sandbox/faults", json={"fail_next": 1})
    http_client.post(
        ENDPOINTS["permits/stats"].path("OC-TOMA"), json={"apiToken": sandbox_process.api_token}
    )
    time.sleep(0.1)
    log = sandbox_process.log()
    assert "sandbox_call" in log
    assert sandbox_process.api_token not in log
    assert other not in log


DOCUMENTED_KEYS = sorted(
    {alias for ep in ENDPOINTS.values() for spec in ep.fields for alias in spec.aliases}
)
# Strings include lone UTF-16 surrogates ("\ud800"): JSON can carry them, UTF-8 cannot.
ANY_TEXT = st.text(max_size=40) | st.text(st.characters(categories=["Cs", "Lu", "Nd"]), max_size=5)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
PATHS = st.one_of(
    st.sampled_from(sorted(ENDPOINTS)).flatmap(
        lambda name: st.sampled_from(["OC-TOMA", "OC_TOMA", "oc-toma", "X", " "]).map(
            lambda client: ENDPOINTS[name].path(client)
        )
    ),
    st.sampled_from(["/api/v1/permits/push", "/api//v1/permits/update", "/api/"]),
    st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#%"), max_size=30
    ).map(lambda tail: "/api/" + tail.lstrip("/")),
)


@st.composite
def bodies(draw: st.DrawFn, token: str) -> bytes:
    kind = draw(st.sampled_from(["documented", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=100))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    body = draw(st.dictionaries(st.sampled_from(DOCUMENTED_KEYS), ANY_TEXT | JSON_VALUES))
    if draw(st.booleans()):
        body["apiToken"] = body["api_token"] = token
        body["client"] = draw(st.sampled_from(["OC-TOMA", "OC_TOMA", "other"]))
    return json.dumps(body).encode()


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
    path=PATHS,
    content_type=st.sampled_from(["application/json", "text/plain", None]),
    data=st.data(),
)
def test_sandbox_never_answers_500(
    sandbox_process: SandboxProcess,
    http_client: httpx.Client,
    method: str,
    path: str,
    content_type: str | None,
    data: st.DataObject,
) -> None:
    body = data.draw(bodies(sandbox_process.api_token))
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = http_client.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
