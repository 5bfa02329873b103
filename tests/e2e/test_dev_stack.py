"""`parkstream dev` (what `make run` starts): demo permits reach the sandbox; a stop leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from foundation.broker import free_port

pytestmark = pytest.mark.slow


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_dev_stack_delivers_demo_permits_and_stops_without_orphans(tmp_path, stop_signal):
    sandbox_port, ops_port = free_port(), free_port()
    env = {
        **os.environ,
        "PARKSTREAM_DATA_DIR": str(tmp_path / "data"),
        "PARKSTREAM_GATEWAY_PORT": str(free_port()),
        "PARKSTREAM_GATEWAY_OPS_PORT": str(ops_port),
        "PARKSTREAM_SANDBOX_PORT": str(sandbox_port),
        "PARKSTREAM_WORKER_WEB_PORT": str(free_port()),
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "parkstream.cli", "dev", "--demo-rate", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        permits = 0
        while permits < 5:
            assert dev.poll() is None, dev.stdout.read()
            assert time.monotonic() < deadline, "no demo permit reached the sandbox in 90 s"
            time.sleep(1)
            try:
                state = httpx.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/state", timeout=2)
                permits = state.json()["counts"]["permits"]
            except httpx.HTTPError:
                continue
        # The gateway's metrics are on its operations port.
        ops_metrics = httpx.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=5)
        assert "parkstream_gateway_requests_total" in ops_metrics.text
        family = children_of(dev.pid)
        assert len(family) >= 4  # broker, sandbox, worker, gateway
        dev.send_signal(stop_signal)
        assert dev.wait(60) == 0
        output = dev.stdout.read()
        assert "parkstream dev is up" in output and "parkstream dev stopped." in output
        assert f"http://127.0.0.1:{ops_port}/metrics" in output
        assert [pid for pid in family if alive(pid)] == []
    finally:
        if dev.poll() is None:
            dev.kill()
