"""The whole stack as production runs it: sandbox, worker(s) and gateway as processes."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from foundation.settings import Settings
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.processes import ParkstreamProcess


async def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25):
    """Poll ``predicate`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, from /metrics text."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(rf"{re.escape(name)}(\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


@dataclass
class Stack:
    env: dict[str, str]
    start_process: Callable[..., ParkstreamProcess]
    workers: list[ParkstreamProcess] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PARKSTREAM_GATEWAY_PORT']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PARKSTREAM_SANDBOX_PORT']}"

    def start_sandbox(self) -> ParkstreamProcess:
        return self.start_process("sandbox", self.env, int(self.env["PARKSTREAM_SANDBOX_PORT"]))

    def start_worker(self, web_port: int | None = None, **kwargs: str) -> ParkstreamProcess:
        """A worker on ``web_port``, with a data dir of its own: started again on the same
        port, it finds its table files as a restarted pod finds its volume."""
        env = dict(self.env)
        if web_port is not None:
            env["PARKSTREAM_WORKER_WEB_PORT"] = str(web_port)
        port = int(env["PARKSTREAM_WORKER_WEB_PORT"])
        if web_port is not None:
            env["PARKSTREAM_DATA_DIR"] = f"{self.env['PARKSTREAM_DATA_DIR']}/worker-{port}"
        worker = self.start_process("worker", env, port, **kwargs)
        self.workers.append(worker)
        return worker

    async def restart_exited_workers(self) -> int:
        """Restart, on its port, each worker that exited by itself, as Kubernetes restarts a
        pod's container (the chart's restart policy); until cancelled. Returns how many."""
        restarted = 0
        try:
            while True:
                for worker in [w for w in self.workers if w.exited_by_itself]:
                    worker.stopped = True  # replaced
                    port = int(worker.env["PARKSTREAM_WORKER_WEB_PORT"])
                    await asyncio.to_thread(self.start_worker, port)
                    restarted += 1
                await asyncio.sleep(1)
        except asyncio.CancelledError:
            return restarted

    def start_gateway(self) -> ParkstreamProcess:
        return self.start_process("gateway", self.env, int(self.env["PARKSTREAM_GATEWAY_PORT"]))

    async def push(self, http: httpx.AsyncClient, body: dict[str, Any]) -> str:
        """Push a permit through the gateway as a vendor; return its reference id."""
        answer = await http.post(
            f"{self.gateway_url}/api/{CLIENT}/v1/permits/push",
            json={"apiToken": VENDOR_TOKEN, **body},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["reference_id"]

    async def sandbox_permits(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        return (await http.get(f"{self.sandbox_url}/_sandbox/permits")).json()["permits"]

    async def sandbox_journal(self, http: httpx.AsyncClient, endpoint: str | None = None):
        params = {"endpoint": endpoint} if endpoint else {}
        return (await http.get(f"{self.sandbox_url}/_sandbox/journal", params=params)).json()[
            "entries"
        ]

    async def set_faults(self, http: httpx.AsyncClient, **faults: Any) -> None:
        answer = await http.put(f"{self.sandbox_url}/_sandbox/faults", json=faults)
        assert answer.status_code == 200, answer.text

    async def session_status(
        self, http: httpx.AsyncClient, reference: str, worker: ParkstreamProcess | None = None
    ) -> dict[str, Any]:
        """``GET /sessions/{reference}`` on ``worker`` (default: the last one started).

        Any answer but 200 reads as ``{"state": None}``: no outcome recorded (yet).
        """
        port = (worker or self.workers[-1]).env["PARKSTREAM_WORKER_WEB_PORT"]
        answer = await http.get(f"http://127.0.0.1:{port}/sessions/{reference}")
        return answer.json() if answer.status_code == 200 else {"state": None}

    async def worker_metrics(self, http: httpx.AsyncClient, worker: int = 0) -> str:
        port = self.workers[worker].env["PARKSTREAM_WORKER_WEB_PORT"]
        return (await http.get(f"http://127.0.0.1:{port}/metrics")).text


@pytest.fixture
def stack(stack_env, start_process) -> Stack:
    """The processes are started by the test (``stack.start_sandbox()`` ...), stopped after it."""
    env = {
        **stack_env,
        "PARKSTREAM_CONTROLLER_URL": f"http://127.0.0.1:{stack_env['PARKSTREAM_SANDBOX_PORT']}",
    }
    return Stack(env, start_process)
