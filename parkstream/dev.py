"""``parkstream dev``: the whole stack on one machine, with demo traffic.

Starts the Tansu broker (free port), the sandbox Controller, the worker and the
gateway as child processes wired together, then pushes a few realistic permits
a second through the gateway as a vendor would. Ctrl+C or SIGTERM stops
everything in reverse order and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from foundation.broker import LocalBroker, wait_for_port
from foundation.settings import Settings

DEMO_VENDOR = "demo-paystation"
DEMO_VENDOR_TOKEN = "demo-vendor-token"
DEMO_CONTROLLER_TOKEN = "sandbox-controller-token"
ZONES = ("Lot 1", "Lot 4", "Red Lot", "Street parking", "Visitor Garage")


def demo_permit(rng: random.Random, now: datetime) -> dict[str, str]:
    """One realistic pay-station permit push body (without the token)."""
    minutes = rng.choice((30, 60, 120, 240))
    start = now.replace(microsecond=0)
    letters = "ABCDEFGHJKLMNPRSTVWXYZ"
    plate = "".join(rng.choice(letters) for _ in range(4)) + str(rng.randint(100, 999))
    return {
        "Amount": str(Decimal(minutes) / Decimal(60) * Decimal("3.25")).split(".")[0]
        + f".{rng.choice(('00', '25', '50', '75'))}",
        "CurrencyID": "CAD",
        "LicencePlate": plate,
        "zone": rng.choice(ZONES),
        "permitNo": f"PS-{rng.randint(1000, 9999)}",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


async def demo_traffic(
    gateway_url: str, sandbox_url: str, client: str, rate: float, stop: asyncio.Event
) -> None:
    """Push ``rate`` permits a second to the gateway until ``stop`` is set; print a tally."""
    rng = random.Random()
    sent = accepted = 0
    last_report = time.monotonic()
    url = f"{gateway_url}/api/{client}/v1/permits/push"
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            body = {"apiToken": DEMO_VENDOR_TOKEN, **demo_permit(rng, datetime.now(UTC))}
            sent += 1
            try:
                answer = await http.post(url, json=body)
                accepted += answer.status_code == 200
            except httpx.HTTPError as exc:
                print(f"demo: push failed: {exc!r}", flush=True)
            if time.monotonic() - last_report >= 10:
                stored = await _controller_permits(http, sandbox_url)
                print(
                    f"demo: {accepted}/{sent} permits accepted by the gateway, "
                    f"{stored} in the Controller (sandbox)",
                    flush=True,
                )
                last_report = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1 / rate)


async def _controller_permits(http: httpx.AsyncClient, sandbox_url: str) -> str:
    try:
        answer = await http.get(f"{sandbox_url}/_sandbox/state")
        return str(answer.json()["counts"].get("permits", 0))
    except (httpx.HTTPError, ValueError, KeyError):
        return "?"


def _spawn(command: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    out = open(log_dir / f"{command}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "parkstream.cli", command],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    return proc


class _Stopped(Exception):
    """SIGTERM or Ctrl+C arrived while the stack was starting."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


def _wait_started(proc: subprocess.Popen[bytes], name: str, port: int, log_dir: Path) -> None:
    """Wait until the child listens on ``port``; fail at once if it exits first."""
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {proc.returncode} while starting; see {log_dir / name}.log"
            )
        try:
            wait_for_port("127.0.0.1", port, timeout=0.5)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not listen on port {port}; see {log_dir / name}.log"
                ) from None


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after ``timeout``; also used by benchmarks/."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_dev(settings: Settings, demo_rate: float = 2.0) -> int:
    """Run the stack until Ctrl+C / SIGTERM; return the exit code."""
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # The local broker keeps nothing between runs, so neither may the worker's table files:
    # offsets and entries of an earlier run's changelogs would be taken for this one's.
    shutil.rmtree(settings.data_dir / "worker", ignore_errors=True)
    stop = asyncio.Event()
    children: list[subprocess.Popen[bytes]] = []
    # Until the event loop takes over, SIGTERM and Ctrl+C unwind through the finally below.
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)

    broker = LocalBroker(log_path=log_dir / "broker.log")
    env = {
        **os.environ,
        "PARKSTREAM_CONTROLLER_URL": f"http://127.0.0.1:{settings.sandbox_port}",
        "PARKSTREAM_CONTROLLER_CLIENT": settings.controller_client,
        "PARKSTREAM_CONTROLLER_API_TOKEN": settings.controller_api_token or DEMO_CONTROLLER_TOKEN,
        "PARKSTREAM_VENDOR_TOKENS": os.environ.get("PARKSTREAM_VENDOR_TOKENS")
        or f"{DEMO_VENDOR}={DEMO_VENDOR_TOKEN}",
        "PARKSTREAM_DATA_DIR": str(settings.data_dir),
        # One broker: one replica (PARKSTREAM_TOPIC_REPLICATION_FACTOR in README.md).
        "PARKSTREAM_TOPIC_REPLICATION_FACTOR": "1",
        "PARKSTREAM_TOPIC_MIN_INSYNC_REPLICAS": "1",
        "PARKSTREAM_GATEWAY_OPS_PORT": str(settings.gateway_ops_port),
        # Tansu answers ListOffsets wrongly for multi-record batches (README.md).
        "PARKSTREAM_PRODUCER_BATCH_MESSAGES": "1",
    }
    gateway_url = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        broker.start()
        env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        for command, port in (
            ("sandbox", settings.sandbox_port),
            ("worker", settings.worker_web_port),
            ("gateway", settings.gateway_port),
        ):
            children.append(_spawn(command, env, log_dir))
            _wait_started(children[-1], command, port, log_dir)
        print(
            "parkstream dev is up:\n"
            f"  gateway   {gateway_url}/api/{settings.controller_client}/v1/permits/push"
            f"  (vendor token: {DEMO_VENDOR_TOKEN})\n"
            f"  gateway   http://127.0.0.1:{settings.gateway_ops_port}/metrics"
            "  (operations port: /readyz, /metrics; not on the vendors' port)\n"
            f"  sandbox   http://127.0.0.1:{settings.sandbox_port}  (journal: /_sandbox/journal)\n"
            f"  worker    http://127.0.0.1:{settings.worker_web_port}/metrics\n"
            f"  broker    {broker.bootstrap_servers}\n"
            f"  logs      {log_dir}/\n"
            "Ctrl+C stops everything.",
            flush=True,
        )

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            tasks = [asyncio.create_task(watch_children(children, stop))]
            if demo_rate > 0:
                tasks.append(
                    asyncio.create_task(
                        demo_traffic(
                            gateway_url,
                            f"http://127.0.0.1:{settings.sandbox_port}",
                            settings.controller_client,
                            demo_rate,
                            stop,
                        )
                    )
                )
            await stop.wait()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
    except _Stopped:
        pass
    except RuntimeError as exc:
        print(f"parkstream dev: {exc}", flush=True)
        return 1
    finally:
        # A second Ctrl+C must not interrupt the shutdown and orphan a child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in reversed(children):
            stop_process(proc)
        broker.stop()
        print("parkstream dev stopped.", flush=True)
    failed = [p for p in children if p.returncode not in (0, -signal.SIGTERM, None)]
    return 1 if failed else 0


async def watch_children(children: list[subprocess.Popen[bytes]], stop: asyncio.Event) -> None:
    """Stop the stack when any child dies, saying which."""
    while not stop.is_set():
        for proc in children:
            if proc.poll() is not None:
                name = proc.args[-1] if isinstance(proc.args, list | tuple) else proc.args
                print(
                    f"parkstream dev: {json.dumps(str(name))} exited with {proc.returncode}; "
                    "stopping (see its log)",
                    flush=True,
                )
                stop.set()
                return
        await asyncio.sleep(0.5)
