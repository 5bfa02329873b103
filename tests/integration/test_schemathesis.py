"""Property-based API tests of the live gateway (a ``parkstream gateway`` process and a real
broker) from the OpenAPI document it publishes: no 5xx, no undocumented status, every
answer in its documented shape."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from foundation.broker import LocalBroker, free_port
from foundation.kafka import ensure_topics
from foundation.settings import Settings
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.processes import ParkstreamProcess
from tests.support.recording_controller import RecordingController, WorkerSessions

MAX_EXAMPLES = 30  # per operation and generation mode: ~600 requests, well under a minute
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_gateway(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway process with a recording Controller and a worker stand-in; its base URL."""
    workdir = tmp_path_factory.mktemp("schemathesis")
    with RecordingController().in_thread() as controller, WorkerSessions().in_thread() as worker:
        port = free_port()
        env = {
            "PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "PARKSTREAM_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
            "PARKSTREAM_TOPIC_PARTITIONS": "3",
            "PARKSTREAM_TOPIC_REPLICATION_FACTOR": "1",
            "PARKSTREAM_TOPIC_MIN_INSYNC_REPLICAS": "1",
            "PARKSTREAM_CONTROLLER_CLIENT": CLIENT,
            "PARKSTREAM_CONTROLLER_API_TOKEN": CONTROLLER_TOKEN,
            "PARKSTREAM_CONTROLLER_URL": controller.url,
            "PARKSTREAM_WORKER_URL": worker.url,
            "PARKSTREAM_VENDOR_TOKENS": f"hotspot={VENDOR_TOKEN}",
            # Granted every pass-through endpoint, so their validation and relay are reached.
            "PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats+profiles/types/list"
            "+violations/send_overdue_to_collections+validate/plate",
            "PARKSTREAM_DATA_DIR": str(workdir / "data"),
            "PARKSTREAM_GATEWAY_PORT": str(port),
            "PARKSTREAM_GATEWAY_OPS_PORT": str(free_port()),
            "PARKSTREAM_LOG_LEVEL": "warning",
        }
        ensure_topics(Settings.from_env(env))
        process = ParkstreamProcess("gateway", env, workdir / "gateway.log", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.stop()


def _operations(base_url: str) -> list:
    loaded = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return [result.ok() for result in loaded.get_all_operations()]


def _with_vendor_token(case) -> None:
    # A real vendor token in most bodies, so validation and Kafka are reached and not
    # just the token check; drawn bodies without a token still test 9001.
    for field in ("apiToken", "api_token"):
        if isinstance(case.body, dict) and case.body.get(field, "") != "":
            case.body[field] = VENDOR_TOKEN


def _issued_reference(base_url: str) -> str:
    answer = httpx.post(
        f"{base_url}/api/{CLIENT}/v1/permits/push",
        json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE},
        timeout=30,
    )
    return answer.json()["reference_id"]


def _run(strategy, base_url: str) -> None:
    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        _with_vendor_token(case)
        headers = {"Authorization": f"Bearer {VENDOR_TOKEN}"} if case.method == "GET" else None
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_live_gateway_answers_only_as_its_openapi_document_says(live_gateway, mode):
    operations = _operations(live_gateway)
    assert len(operations) == 10  # 5 pushes, 4 pass-throughs, the delivery status
    for operation in operations:
        _run(operation.as_strategy(generation_mode=mode), live_gateway)
    # The status of a permit the gateway really issued, not only of made-up ids.
    [status] = [op for op in operations if op.method.upper() == "GET"]
    reference = _issued_reference(live_gateway)
    _run(
        status.as_strategy(generation_mode=mode, path_parameters={"reference_id": reference}),
        live_gateway,
    )
