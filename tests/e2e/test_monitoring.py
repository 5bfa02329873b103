"""A real Prometheus scrapes the gateway, the worker and the sandbox of a running stack; after
traffic with a retry, a gateway rejection and a Controller ErrorCode, every expression of every
shipped Grafana dashboard returns data (not only its ``or vector(0)`` fallback)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from foundation.broker import free_port, wait_for_port
from tests.conftest import CLIENT
from tests.e2e.conftest import wait_until
from tests.e2e.test_stats import VENDORS, Vendors, controller_loses, wire_time

DASHBOARDS = Path(__file__).resolve().parents[2] / "helm" / "parkstream" / "dashboards"
FALLBACKS = (" or on() vector(0)", " or vector(0)")


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expr) for every query target of every shipped dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"]))
    return found


def without_fallback(expr: str) -> str:
    """The expression without its ``or vector(0)`` tail: what real series it selects."""
    for tail in FALLBACKS:
        if expr.endswith(tail):
            return expr[: -len(tail)]
    return expr


class Prometheus:
    """The ``prometheus`` server as a child process, scraping the given targets every second."""

    def __init__(self, binary: str, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self.command = [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", self.port, timeout=30)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def query(self, http: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
        answer = await http.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = answer.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        return body["data"]["result"]


@pytest.fixture
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip(
            "prometheus not found: `make system-deps` installs it (Debian package prometheus)"
        )
    return path


@pytest.fixture
def prometheus(stack, prometheus_binary, tmp_path) -> Iterator[Prometheus]:
    targets = {
        # The gateway's /metrics is on its operations port, never on the vendors' port.
        "gateway": int(stack.env["PARKSTREAM_GATEWAY_OPS_PORT"]),
        "worker": int(stack.env["PARKSTREAM_WORKER_WEB_PORT"]),
        "sandbox": int(stack.env["PARKSTREAM_SANDBOX_PORT"]),
    }
    server = Prometheus(prometheus_binary, tmp_path, targets)
    yield server
    server.stop()


@pytest.mark.slow
async def test_every_dashboard_query_returns_data_from_a_real_prometheus(stack, prometheus):
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    prometheus.start()
    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(timeout=15) as http:
        # Every target is scraped.
        async def all_up() -> bool:
            up = await prometheus.query(http, "up")
            return len(up) == 3 and all(s["value"][1] == "1" for s in up)

        await wait_until(all_up, timeout=60)

        vendors = Vendors(stack, http)
        # One transient failure first: retried, not dead-lettered.
        await stack.set_faults(http, fail_next=1, failure_status=503, endpoints=["permits/push"])
        # Active permits: the push that fails once is looked up and found absent (an ended
        # one could not be looked up, and would be in doubt).
        await vendors.push(4, now, starts=(-1,))
        await vendors.delivered()
        # A vendor retries the same push (dedupe); a push without a plate is refused (9006).
        first = vendors.permits[0]
        body = {
            "apiToken": VENDORS[first.vendor],
            "LicencePlate": first.plate,
            "zone": first.zone,
            "Amount": str(first.amount),
            "CurrencyID": first.currency,
            "startTime": wire_time(first.start),
            "endTime": wire_time(first.end),
        }
        again = await http.post(f"{stack.gateway_url}/api/{CLIENT}/v1/permits/push", json=body)
        assert again.json()["reference_id"] == first.reference, again.text
        refused = await http.post(
            f"{stack.gateway_url}/api/{CLIENT}/v1/permits/push",
            json={k: v for k, v in body.items() if k != "LicencePlate"},
        )
        assert refused.json().get("ErrorCode") == 9006, refused.text
        # The Controller lost a permit: the vendor's update of it is refused with 9009.
        lost = vendors.permits[1]
        await controller_loses(stack, http, lost)
        await vendors.update(lost, "3.00", now + timedelta(hours=4))
        await vendors.delete(vendors.permits[2])

        rejected = 'parkstream_controller_calls_total{outcome="rejected",error_code="9009"}'
        await wait_until(lambda: prometheus.query(http, f"{rejected} > 0"), timeout=90)

        queries = dashboard_queries()
        assert queries, f"no dashboards in {DASHBOARDS}"
        for where, expr in queries:
            assert await prometheus.query(http, expr), f"{where}: no series: {expr}"

        empty: list[str] = []

        async def all_have_data() -> bool:
            empty[:] = [
                f"{where}: {without_fallback(expr)}"
                for where, expr in queries
                if not await prometheus.query(http, without_fallback(expr))
            ]
            return not empty

        try:
            await wait_until(all_have_data, timeout=60, interval=1.0)
        except TimeoutError:
            pytest.fail("dashboard queries without data:\n" + "\n".join(empty))
