"""End-to-end throughput: vendors -> gateway -> Kafka -> worker -> Controller.

Starts the whole stack as processes on this machine (Tansu broker, sandbox
Controller with a fixed per-call latency, one worker, one gateway), pushes
permits through the gateway from 64 concurrent vendor connections, and reports:

- gateway: permits accepted per second (each answer waits for Kafka's ack);
- pipeline: permits applied by the Controller per second, from the first push
  to the last permit stored, with the Controller answering after ``latency``.

The bar to beat (DESIGN.md): a plain Faust agent with ``concurrency=32`` calling
a 50 ms endpoint reached ~520 calls/s, without per-key order or safe acking.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from benchmarks._stack import permit, processes, stack_env
from foundation.broker import LocalBroker
from foundation.kafka import ensure_topics
from foundation.settings import Settings

PERMITS = int(os.environ.get("PARKSTREAM_BENCH_PERMITS", "4000"))
VENDORS = 64


async def _run(env: dict[str, str], permits: int) -> tuple[float, float]:
    gateway = f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_PORT']}/api/OC-TOMA/v1/permits/push"
    sandbox = f"http://127.0.0.1:{env['PARKSTREAM_SANDBOX_PORT']}/_sandbox/state"
    start = datetime.now(UTC).replace(microsecond=0)
    # aiohttp as the load generator: httpx's own transport would be the bottleneck here.
    connector = aiohttp.TCPConnector(limit=VENDORS)
    async with aiohttp.ClientSession(connector=connector) as http:
        began = time.perf_counter()

        async def vendor(first: int) -> None:
            for index in range(first, permits, VENDORS):
                async with http.post(gateway, json=permit(index, start)) as answer:
                    answer.raise_for_status()
                    await answer.read()

        await asyncio.gather(*(vendor(v) for v in range(VENDORS)))
        accepted = time.perf_counter() - began
        while True:
            async with http.get(sandbox) as answer:
                counts = (await answer.json())["counts"]
            if counts.get("permits", 0) >= permits:
                break
            await asyncio.sleep(0.2)
        applied = time.perf_counter() - began
    return permits / accepted, permits / applied


def scenario(latency_ms: int, permits: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, LocalBroker() as broker:
        env = stack_env(
            broker.bootstrap_servers,
            Path(tmp),
            PARKSTREAM_PRODUCER_BATCH_MESSAGES=os.environ.get("PARKSTREAM_BENCH_BATCH", "1"),
            PARKSTREAM_SANDBOX_FAULT_LATENCY_MS=str(latency_ms),
        )
        ensure_topics(Settings.from_env(env))
        with processes(Path(tmp)) as procs:
            for command in ("sandbox", "worker", "gateway"):
                procs.start(command, env)
            time.sleep(3)  # the worker joins its group and recovers its tables
            return asyncio.run(_run(env, permits))


def main() -> None:
    print(
        f"pipeline: {PERMITS} permits, {VENDORS} concurrent vendors, 1 worker, "
        "PARKSTREAM_CONTROLLER_CONCURRENCY=32"
    )
    for latency in (0, 50):
        accepted, applied = scenario(latency, PERMITS)
        print(
            f"  Controller latency {latency:>3} ms: gateway accepted {accepted:7.0f} permits/s, "
            f"pipeline applied {applied:7.0f} permits/s"
        )
