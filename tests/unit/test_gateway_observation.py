"""How the gateway observes a vendor request: one count in
``parkstream_gateway_requests_total{endpoint,vendor,outcome,error_code}``, one time in
``parkstream_gateway_request_duration_seconds{endpoint}``, and its log line, for every kind
of route (push, pass-through, delivery status) and every way a request ends. Routes that
are no vendor API (``/healthz``, ``/openapi.json``, an unknown path) are not counted.

No broker: the gateway is given a producer that answers as a test tells it to.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from foundation.broker import free_port
from foundation.kafka import BrokerUnavailable
from foundation.settings import Settings
from producers.gateway import create_app
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.recording_controller import RecordingController, WorkerSessions

BANNER_TOKEN = "banner-test-token-0002"
PUSH = f"/api/{CLIENT}/v1/permits/push"
STATS = f"/api/{CLIENT}/v1/permits/stats"
PLATE = "/api/v1/validate/plate"
REQUESTS = "parkstream_gateway_requests_total"
LATENCY_COUNT = "parkstream_gateway_request_duration_seconds_count"


class ScriptedProducer:
    """Takes every record, or raises what ``fail_with`` holds."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.fail_with: Exception | None = None

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((topic, value, key))

    def close(self, timeout: float = 0) -> None:
        pass


def requests(endpoint: str, vendor: str, outcome: str, error_code: str = "") -> float:
    labels = {"endpoint": endpoint, "vendor": vendor, "outcome": outcome, "error_code": error_code}
    return REGISTRY.get_sample_value(REQUESTS, labels) or 0.0


def timed(endpoint: str) -> float:
    return REGISTRY.get_sample_value(LATENCY_COUNT, {"endpoint": endpoint}) or 0.0


def every_request() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == REQUESTS
    )


@pytest.fixture
async def controller() -> AsyncIterator[RecordingController]:
    recording = await RecordingController().start()
    yield recording
    await recording.stop()


@pytest.fixture
async def worker() -> AsyncIterator[WorkerSessions]:
    sessions = await WorkerSessions().start()
    yield sessions
    await sessions.stop()


@pytest.fixture
def env(controller: RecordingController, worker: WorkerSessions, tmp_path) -> dict[str, str]:
    return {
        # Nothing listens there: the gateway is given its producer and must not need a broker.
        "PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "PARKSTREAM_CONTROLLER_CLIENT": CLIENT,
        "PARKSTREAM_CONTROLLER_API_TOKEN": CONTROLLER_TOKEN,
        "PARKSTREAM_CONTROLLER_URL": controller.url,
        "PARKSTREAM_WORKER_URL": worker.url,
        "PARKSTREAM_VENDOR_TOKENS": f"{VENDOR}={VENDOR_TOKEN},banner={BANNER_TOKEN}",
        "PARKSTREAM_VENDOR_GRANTS": f"{VENDOR}=permits/stats+validate/plate",
        "PARKSTREAM_GATEWAY_MAX_BODY_BYTES": "1024",
        "PARKSTREAM_DATA_DIR": str(tmp_path / "data"),
    }


Gateway = Callable[..., Any]


@pytest.fixture
async def gateway(env: dict[str, str]) -> AsyncIterator[Gateway]:
    """``await gateway(**env overrides)``: a client of a gateway with a scripted producer."""
    clients: list[TestClient] = []

    async def start(**overrides: str) -> TestClient:
        producer = ScriptedProducer()
        app = create_app(Settings.from_env({**env, **overrides}), producer)  # type: ignore[arg-type]
        client = TestClient(TestServer(app))
        await client.start_server()
        client.producer = producer  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
def gateway_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[tuple[str, str]]]:
    caplog.set_level(logging.INFO)

    def lines() -> list[tuple[str, str]]:
        return [
            (r.levelname, r.getMessage()) for r in caplog.records if r.name == "producers.gateway"
        ]

    return lines


async def test_an_accepted_push_is_counted_timed_and_logged(gateway, gateway_log) -> None:
    client = await gateway()
    before, before_timed = requests("permits/push", VENDOR, "accepted"), timed("permits/push")
    answer = await client.post(PUSH, json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE})
    assert answer.status == 200
    reference = (await answer.json())["reference_id"]
    assert requests("permits/push", VENDOR, "accepted") == before + 1
    assert timed("permits/push") == before_timed + 1
    [(level, line)] = gateway_log()
    assert level == "INFO"
    assert line.startswith(
        f'request accepted endpoint="permits/push" vendor="{VENDOR}" reference_id="{reference}" '
        'event_id="'
    )


@pytest.mark.parametrize(
    ("path", "body", "endpoint", "vendor", "field", "reason"),
    [
        (
            PUSH,
            {"apiToken": "nobody", **PERMIT_PUSH_EXAMPLE},
            "permits/push",
            "unknown",
            "apiToken",
            "unknown token",
        ),
        (
            PLATE,
            {"api_token": BANNER_TOKEN, "client": CLIENT, "plate": "PL8RDR"},
            "validate/plate",
            "banner",
            "",
            "endpoint not granted to this vendor",
        ),
    ],
    ids=["unknown-token", "ungranted-pass-through"],
)
async def test_a_refusal_is_counted_for_the_vendor_known_by_then_and_logged(
    gateway, gateway_log, path, body, endpoint, vendor, field, reason
) -> None:
    client = await gateway()
    before = requests(endpoint, vendor, "rejected", "9002")
    answer = await client.post(path, json=body)
    assert answer.status == 403
    refusal = await answer.json()
    assert refusal["ErrorCode"] == 9002
    assert ("error" in refusal) == (endpoint == "validate/plate")  # its own envelope
    assert requests(endpoint, vendor, "rejected", "9002") == before + 1
    assert gateway_log() == [
        (
            "INFO",
            f'request rejected endpoint="{endpoint}" vendor="{vendor}" error_code=9002 '
            f'field="{field}" reason="{reason}"',
        )
    ]


async def test_a_field_error_is_rejected_for_the_vendor_with_its_field(
    gateway, gateway_log
) -> None:
    client = await gateway()
    before = requests("permits/push", VENDOR, "rejected", "9033")
    body = {"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE, "Amount": ["14.50"]}
    answer = await client.post(PUSH, json=body)
    assert answer.status == 422
    assert requests("permits/push", VENDOR, "rejected", "9033") == before + 1
    [(level, line)] = gateway_log()
    assert (level, line.split(" field=")[0]) == (
        "INFO",
        f'request rejected endpoint="permits/push" vendor="{VENDOR}" error_code=9033',
    )


async def test_a_body_over_the_limit_is_too_large_and_not_logged(gateway, gateway_log) -> None:
    client = await gateway()
    before = requests("permits/push", "unknown", "too_large", "9003")
    body = {"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE, "padding": "x" * 2000}
    answer = await client.post(PUSH, json=body)
    assert answer.status == 413
    assert requests("permits/push", "unknown", "too_large", "9003") == before + 1
    assert gateway_log() == []


async def test_a_broker_that_cannot_take_the_event_is_unavailable(gateway, gateway_log) -> None:
    client = await gateway()
    client.producer.fail_with = BrokerUnavailable("down")
    before = requests("permits/push", VENDOR, "unavailable")
    answer = await client.post(PUSH, json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE})
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert requests("permits/push", VENDOR, "unavailable") == before + 1
    assert gateway_log() == [
        (
            "WARNING",
            f'event not accepted, answering 503 endpoint="permits/push" vendor="{VENDOR}" '
            'reason="down"',
        )
    ]


async def test_an_unexpected_failure_is_counted_as_an_error(gateway) -> None:
    client = await gateway()
    client.producer.fail_with = RuntimeError("a bug")
    before, before_timed = requests("permits/push", VENDOR, "error"), timed("permits/push")
    answer = await client.post(PUSH, json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE})
    assert answer.status == 500
    assert requests("permits/push", VENDOR, "error") == before + 1
    assert timed("permits/push") == before_timed + 1


async def test_a_granted_pass_through_is_counted_as_passed_through(gateway, gateway_log) -> None:
    client = await gateway()
    before, before_timed = (
        requests("permits/stats", VENDOR, "passed_through"),
        timed("permits/stats"),
    )
    answer = await client.post(STATS, json={"apiToken": VENDOR_TOKEN, "zones": "zone1"})
    assert answer.status == 200
    assert requests("permits/stats", VENDOR, "passed_through") == before + 1
    assert timed("permits/stats") == before_timed + 1
    assert gateway_log() == []


async def test_a_pass_through_without_parkstreams_token_is_unavailable(
    gateway, gateway_log
) -> None:
    client = await gateway(PARKSTREAM_CONTROLLER_API_TOKEN="")
    before = requests("permits/stats", VENDOR, "unavailable")
    answer = await client.post(STATS, json={"apiToken": VENDOR_TOKEN, "zones": "zone1"})
    assert answer.status == 503
    assert requests("permits/stats", VENDOR, "unavailable") == before + 1
    assert gateway_log() == [
        (
            "ERROR",
            'cannot pass through endpoint="permits/stats": PARKSTREAM_CONTROLLER_API_TOKEN is '
            "not set",
        )
    ]


async def test_delivery_status_is_counted_as_permits_status(gateway) -> None:
    client = await gateway()
    pushed = await client.post(PUSH, json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE})
    reference = (await pushed.json())["reference_id"]
    bearer = {"Authorization": f"Bearer {VENDOR_TOKEN}"}
    answered, timed_before = requests("permits/status", VENDOR, "answered"), timed("permits/status")
    missing = requests("permits/status", "unknown", "rejected", "9001")
    not_ours = requests("permits/status", VENDOR, "rejected", "9009")

    assert (await client.get(f"/api/{CLIENT}/v1/permits/{reference}", headers=bearer)).status == 200
    assert (await client.get(f"/api/{CLIENT}/v1/permits/{reference}")).status == 401
    assert (await client.get(f"/api/{CLIENT}/v1/permits/ps-x", headers=bearer)).status == 404

    assert requests("permits/status", VENDOR, "answered") == answered + 1
    assert requests("permits/status", "unknown", "rejected", "9001") == missing + 1
    assert requests("permits/status", VENDOR, "rejected", "9009") == not_ours + 1
    assert timed("permits/status") == timed_before + 3


async def test_a_head_request_for_a_status_is_observed_as_its_get(gateway) -> None:
    client = await gateway()
    missing = requests("permits/status", "unknown", "rejected", "9001")
    assert (await client.head(f"/api/{CLIENT}/v1/permits/ps-x")).status == 401
    assert requests("permits/status", "unknown", "rejected", "9001") == missing + 1


async def test_routes_that_are_no_vendor_api_are_not_counted(gateway) -> None:
    client = await gateway()
    before = every_request()
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/openapi.json")).status == 200
    assert (await client.post("/api/nothing/here", json={})).status == 404
    assert (await client.post("/api/v1/permits/push", json={})).status == 400  # 9000
    assert every_request() == before
