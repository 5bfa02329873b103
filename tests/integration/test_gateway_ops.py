"""The gateway's operations endpoints live on PARKSTREAM_GATEWAY_OPS_PORT, never on the port
vendors reach: /metrics names every vendor and its volumes (a ``parkstream gateway`` process)."""

from __future__ import annotations

import httpx
import pytest

from foundation.broker import free_port, wait_for_port
from tests.conftest import CLIENT, VENDOR, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE


@pytest.fixture
def gateway_ports(stack_env, start_process) -> tuple[str, str]:
    env = {**stack_env, "PARKSTREAM_GATEWAY_OPS_PORT": str(free_port())}
    start_process("gateway", env, int(env["PARKSTREAM_GATEWAY_PORT"]))
    wait_for_port("127.0.0.1", int(env["PARKSTREAM_GATEWAY_OPS_PORT"]), timeout=30)
    return (
        f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_PORT']}",
        f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_OPS_PORT']}",
    )


def test_metrics_and_readyz_are_not_on_the_vendor_port(gateway_ports):
    vendor, _ = gateway_ports
    pushed = httpx.post(
        f"{vendor}/api/{CLIENT}/v1/permits/push",
        json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE},
        timeout=15,
    )
    assert pushed.status_code == 200
    for path in ("/metrics", "/readyz"):
        answer = httpx.get(f"{vendor}{path}", timeout=5)
        assert answer.status_code == 404, path
        assert VENDOR not in answer.text
    assert httpx.get(f"{vendor}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{vendor}/openapi.json", timeout=5).status_code == 200


def test_the_ops_port_serves_metrics_readiness_and_health(gateway_ports):
    vendor, ops = gateway_ports
    httpx.post(
        f"{vendor}/api/{CLIENT}/v1/permits/push",
        json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE},
        timeout=15,
    )
    metrics = httpx.get(f"{ops}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert (
        'parkstream_gateway_requests_total{endpoint="permits/push",error_code="",'
        f'outcome="accepted",vendor="{VENDOR}"}} 1.0'
    ) in metrics.text
    assert httpx.get(f"{ops}/readyz", timeout=5).json() == {"status": "ready"}
    assert httpx.get(f"{ops}/healthz", timeout=5).status_code == 200
    # The ops port is no second vendor port.
    refused = httpx.post(
        f"{ops}/api/{CLIENT}/v1/permits/push",
        json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE},
        timeout=5,
    )
    assert refused.status_code == 404
