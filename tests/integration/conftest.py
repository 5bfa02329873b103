"""The sandbox as a separate process, the way other services and e2e tests meet it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from foundation.broker import free_port

SANDBOX_PROCESS_CLIENT = "OC-TOMA"
SANDBOX_PROCESS_TOKEN = "sandbox-process-token-4c1d"
REPO = Path(__file__).resolve().parents[2]

# Runs sandbox.app.serve with settings from the environment, logging everything to stderr.
_SERVE = (
    "import asyncio, logging, sys\n"
    "from sandbox.app import SandboxConfig, serve\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
    "try:\n"
    "    asyncio.run(serve('127.0.0.1', int(sys.argv[1]), SandboxConfig.from_env()))\n"
    "except KeyboardInterrupt:\n"
    "    pass\n"
)


@dataclass
class SandboxProcess:
    """A running ``sandbox.app.serve`` in a child process."""

    url: str
    client: str
    api_token: str
    db_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sandbox/reset", timeout=5.0).raise_for_status()


@pytest.fixture(scope="module")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """One sandbox process per test module (SQLite file, DEBUG log to a file), ready to call."""
    workdir = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    env.update(
        {
            "PARKSTREAM_CONTROLLER_CLIENT": SANDBOX_PROCESS_CLIENT,
            "PARKSTREAM_CONTROLLER_API_TOKEN": SANDBOX_PROCESS_TOKEN,
            "PARKSTREAM_SANDBOX_DB": str(workdir / "sandbox.sqlite"),
        }
    )
    log_path = workdir / "sandbox.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(port)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = SandboxProcess(
        url=f"http://127.0.0.1:{port}",
        client=SANDBOX_PROCESS_CLIENT,
        api_token=SANDBOX_PROCESS_TOKEN,
        db_path=workdir / "sandbox.sqlite",
        log_path=log_path,
        proc=proc,
    )
    try:
        deadline = time.monotonic() + 20.0
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox exited {proc.returncode}:\n{running.log()}")
            try:
                if httpx.get(f"{running.url}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox not ready:\n{running.log()}")
            time.sleep(0.05)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
