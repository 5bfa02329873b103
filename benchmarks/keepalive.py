"""Keep-alive answer time of the sandbox (the Nagle + delayed-ACK trap in DESIGN.md).

A server that writes headers and body in separate sends without TCP_NODELAY makes
every answer on a reused connection wait ~40 ms for the client's delayed ACK. This
starts `parkstream sandbox` and times 2,000 sequential requests on one connection.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import time

from foundation.broker import free_port, wait_for_port
from schemas.controller import ENDPOINTS

CALLS = 2000
TOKEN = "bench-token"


def main() -> None:
    port = free_port()
    env = {
        **os.environ,
        "PARKSTREAM_SANDBOX_PORT": str(port),
        "PARKSTREAM_CONTROLLER_API_TOKEN": TOKEN,
        "PARKSTREAM_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "parkstream.cli", "sandbox"], env=env)
    try:
        wait_for_port("127.0.0.1", port, 30)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        path = ENDPOINTS["permits/stats"].path("OC-TOMA")
        body = json.dumps({"apiToken": TOKEN}).encode()
        headers = {"Content-Type": "application/json"}
        durations = []
        for _ in range(CALLS + 1):
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            conn.getresponse().read()
            durations.append(time.perf_counter() - started)
        conn.close()
        durations = durations[1:]
        print(
            f"sandbox keep-alive: {CALLS} calls on one connection, "
            f"median {statistics.median(durations) * 1000:.3f} ms, "
            f"p99 {statistics.quantiles(durations, n=100)[98] * 1000:.3f} ms "
            "(delayed-ACK trap would show ~40 ms)"
        )
    finally:
        proc.terminate()
        proc.wait(10)
