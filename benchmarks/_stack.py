"""The parts of a parkstream stack the benchmarks start as processes on this machine.

``stack_env`` is the environment every benchmark gives its processes (one Tansu broker:
one replica, ``PARKSTREAM_PRODUCER_BATCH_MESSAGES=1``, free ports, a temporary data
dir); ``processes`` starts ``parkstream <command>`` processes (or a benchmark's own module
standing in for one) with their logs in that dir and stops every one of them on exit, also
when the benchmark fails. ``permit`` is the vendor push the benchmarks send.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from foundation.broker import free_port, wait_for_port
from parkstream.dev import stop_process

VENDOR = "bench"
VENDOR_TOKEN = "bench-vendor-token"

# The variable holding the port each command listens on (waited for at its start).
PORTS = {
    "sandbox": "PARKSTREAM_SANDBOX_PORT",
    "worker": "PARKSTREAM_WORKER_WEB_PORT",
    "gateway": "PARKSTREAM_GATEWAY_PORT",
}
# Benchmark modules (``python -m benchmarks...``) run from the repository's root.
ROOT = Path(__file__).resolve().parents[1]


def stack_env(bootstrap_servers: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a one-machine stack on the broker ``bootstrap_servers``."""
    # Four different ports: a port just freed can come back from the next free_port().
    ports: set[int] = set()
    while len(ports) < 4:
        ports.add(free_port())
    gateway, gateway_ops, sandbox, worker = (str(port) for port in ports)
    env = {
        **os.environ,
        "PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "PARKSTREAM_TOPIC_PARTITIONS": "6",
        # One broker: one replica (PARKSTREAM_TOPIC_REPLICATION_FACTOR in README.md).
        "PARKSTREAM_TOPIC_REPLICATION_FACTOR": "1",
        "PARKSTREAM_TOPIC_MIN_INSYNC_REPLICAS": "1",
        # The Tansu workaround (docs/local-broker.md): one record per batch.
        "PARKSTREAM_PRODUCER_BATCH_MESSAGES": "1",
        "PARKSTREAM_CONTROLLER_API_TOKEN": "bench-controller-token",
        "PARKSTREAM_VENDOR_TOKENS": f"{VENDOR}={VENDOR_TOKEN}",
        "PARKSTREAM_GATEWAY_PORT": gateway,
        "PARKSTREAM_GATEWAY_OPS_PORT": gateway_ops,
        "PARKSTREAM_SANDBOX_PORT": sandbox,
        "PARKSTREAM_WORKER_WEB_PORT": worker,
        "PARKSTREAM_DATA_DIR": str(data_dir),
        "PARKSTREAM_LOG_LEVEL": "warning",
        "PARKSTREAM_SANDBOX_JOURNAL_SIZE": "100",
    }
    env["PARKSTREAM_CONTROLLER_URL"] = f"http://127.0.0.1:{env['PARKSTREAM_SANDBOX_PORT']}"
    env.update(overrides)
    return env


def permit(index: int, start: datetime) -> dict[str, str]:
    """Vendor permit push number ``index``: a plate and ticket number of its own."""
    return {
        "apiToken": VENDOR_TOKEN,
        "Amount": "4.50",
        "CurrencyID": "CAD",
        "LicencePlate": f"BN{index:06d}",
        "zone": "Lot 4",
        "permitNo": f"BENCH-{index}",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


class Processes:
    """``parkstream <command>`` processes, each logging to ``<log_dir>/<command>.log``
    (``processes`` stops every one still running when its block ends)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        command: str,
        env: dict[str, str],
        *,
        wait: bool = True,
        log_name: str = "",
        module: str = "parkstream.cli",
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m <module> <command>`` (``parkstream command``, or a benchmark's
        stand-in for it); with ``wait``, return once its port answers."""
        log_path = self.log_dir / f"{log_name or command}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.running.append(proc)
        if wait:
            try:
                wait_for_port("127.0.0.1", int(env[PORTS[command]]), 60)
            except TimeoutError:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{command} did not start; its log ends:\n{tail}") from None
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
        """SIGTERM (a graceful stop), SIGKILL after ``timeout``; the exit code."""
        stop_process(proc, timeout)
        if proc in self.running:
            self.running.remove(proc)
        return proc.returncode


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    """The processes started in the block, stopped when it ends (also by an error)."""
    started = Processes(log_dir)
    try:
        yield started
    finally:
        for proc in reversed(started.running):
            stop_process(proc, 30)
