"""Controller client transport: calls/s and client CPU per call, 32 concurrent keep-alive calls.

A tiny aiohttp.web server answering the permit push success body runs in its
own process (pinned to its own CPU when there are two or more), so the CPU
measured here is the client's alone. For each client stack, 32 workers loop
POST -> read the answer over keep-alive connections for a few seconds after a
warm-up; we count completed calls and the client process' CPU time
(``time.process_time``) over the same window. A sequential keep-alive loop on
one connection checks the delayed-ACK trap: its idle time per call (wall minus
client CPU) is ~40 ms if the server's header and body writes wait for an ACK,
well under 1 ms if not.

Stacks: httpx with its default ``AsyncHTTPTransport``; httpx over
``httpx_aiohttp.AiohttpTransport``; plain aiohttp; and parkstream's own
``ControllerClient`` (contract encoding + classification over
``default_transport()``).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

CONCURRENCY = 32
DURATION_SECONDS = 4.0
WARMUP_SECONDS = 1.0
SEQUENTIAL_CALLS = 1000
DELAYED_ACK_SUSPECT_MS = 1.0
CLIENT = "OC-TOMA"
TOKEN = "bench-token-0000000000000000000000000000000000000"
PATH = f"/api/{CLIENT}/v1/permits/push"
SUCCESS_BODY = json.dumps(
    {
        "status": "success",
        "reference_id": "1a9b5375-cb75-4c71-9939-eeae550b09ac",
        "InternalReferenceID": "1a9b5375-cb75-4c71-9939-eeae550b09ac",
    }
).encode()
# The documented permit push example, as the raw stacks send it.
REQUEST_BODY = json.dumps(
    {
        "apiToken": TOKEN,
        "Amount": "14.50",
        "CurrencyID": "CAD",
        "LicencePlate": "PL8RDR",
        "zone": "Lot 4",
        "permitNo": "L4-1138",
        "startTime": "2018-07-02T09:00:00",
        "endTime": "2018-07-02T09:30:00",
    },
    separators=(",", ":"),
).encode()
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# The same permit as canonical contract fields, for ControllerClient.push_permit.
CANONICAL_PERMIT = {
    "amount": Decimal("14.50"),
    "currency": "CAD",
    "plate": "PL8RDR",
    "zone": "Lot 4",
    "permit_no": "L4-1138",
    "start_time": datetime(2018, 7, 2, 9, 0, tzinfo=UTC),
    "end_time": datetime(2018, 7, 2, 9, 30, tzinfo=UTC),
}

Call = Callable[[], Awaitable[None]]


# --- server (child process) ------------------------------------------------


def _serve(conn: Connection, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    connections: set[int] = set()
    counters = {"requests": 0}

    async def push(request: web.Request) -> web.Response:
        await request.read()
        connections.add(id(request.transport))
        counters["requests"] += 1
        return web.Response(body=SUCCESS_BODY, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        body = {"connections": len(connections), "requests": counters["requests"]}
        if request.method == "POST":  # reset
            connections.clear()
            counters["requests"] = 0
        return web.json_response(body)

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/api/{client}/v1/permits/push", push)
        app.router.add_route("*", "/__stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert runner.addresses
        conn.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(run())


def _server_stats(base: str, reset: bool = False) -> dict[str, int]:
    request = urllib.request.Request(f"{base}/__stats", method="POST" if reset else "GET")
    with urllib.request.urlopen(request, timeout=5) as answer:
        stats: dict[str, int] = json.load(answer)
        return stats


def _cpu_seconds(pid: int) -> float:
    """utime + stime of another process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- load ------------------------------------------------------------------


@dataclass
class Result:
    stack: str
    calls: int
    wall_seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    p50_ms: float
    p99_ms: float
    sequential_ms: float
    sequential_wait_ms: float  # mean wall minus client CPU: time the client sat idle
    connections: int

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.wall_seconds

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_seconds / self.calls

    @property
    def server_busy(self) -> float:
        return self.server_cpu_seconds / self.wall_seconds


@dataclass(frozen=True)
class Target:
    base: str
    server_pid: int
    duration: float
    warmup: float


async def _measure(stack: str, call: Call, target: Target) -> Result:
    # Sequential keep-alive loop first: one connection, one call at a time.
    for _ in range(20):
        await call()
    sequential = []
    cpu_before = time.process_time()
    for _ in range(SEQUENTIAL_CALLS):
        begin = time.perf_counter()
        await call()
        sequential.append(time.perf_counter() - begin)
    sequential_cpu_ms = 1000 * (time.process_time() - cpu_before) / SEQUENTIAL_CALLS
    sequential_ms = 1000 * statistics.median(sequential)

    measuring = False
    stopping = False
    latencies: list[float] = []

    async def worker() -> None:
        while not stopping:
            begin = time.perf_counter()
            await call()
            if measuring:
                latencies.append(time.perf_counter() - begin)

    workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    await asyncio.sleep(target.warmup)
    await asyncio.to_thread(_server_stats, target.base, True)
    measuring = True
    wall0, cpu0 = time.perf_counter(), time.process_time()
    server0 = _cpu_seconds(target.server_pid)
    await asyncio.sleep(target.duration)
    measuring = False
    wall1, cpu1 = time.perf_counter(), time.process_time()
    server1 = _cpu_seconds(target.server_pid)
    stopping = True
    await asyncio.gather(*workers)
    seen = await asyncio.to_thread(_server_stats, target.base)
    quantiles = statistics.quantiles(latencies, n=100)
    return Result(
        stack=stack,
        calls=len(latencies),
        wall_seconds=wall1 - wall0,
        cpu_seconds=cpu1 - cpu0,
        server_cpu_seconds=server1 - server0,
        p50_ms=1000 * quantiles[49],
        p99_ms=1000 * quantiles[98],
        sequential_ms=sequential_ms,
        sequential_wait_ms=max(0.0, 1000 * statistics.fmean(sequential) - sequential_cpu_ms),
        connections=seen["connections"],
    )


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)


async def _httpx(stack: str, target: Target, transport: httpx.AsyncBaseTransport | None) -> Result:
    async with httpx.AsyncClient(transport=transport, limits=_limits(), timeout=10.0) as client:
        url = target.base + PATH

        async def call() -> None:
            answer = await client.post(url, content=REQUEST_BODY, headers=HEADERS)
            if answer.status_code != 200 or answer.content != SUCCESS_BODY:
                raise RuntimeError(f"bad answer {answer.status_code}")

        return await _measure(stack, call, target)


async def httpx_default(stack: str, target: Target) -> Result:
    return await _httpx(stack, target, None)


async def httpx_over_aiohttp(stack: str, target: Target) -> Result:
    return await _httpx(stack, target, AiohttpTransport(limits=_limits()))


async def plain_aiohttp(stack: str, target: Target) -> Result:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        url = target.base + PATH

        async def call() -> None:
            async with session.post(url, data=REQUEST_BODY, headers=HEADERS) as answer:
                body = await answer.read()
                if answer.status != 200 or body != SUCCESS_BODY:
                    raise RuntimeError(f"bad answer {answer.status}")

        return await _measure(stack, call, target)


async def controller_client(stack: str, target: Target) -> Result:
    from foundation.controller import ControllerClient

    async with ControllerClient(
        target.base, CLIENT, TOKEN, max_connections=CONCURRENCY
    ) as controller:

        async def call() -> None:
            reply = await controller.push_permit(CANONICAL_PERMIT)
            if reply.reference_id is None:
                raise RuntimeError("no reference id")

        return await _measure(stack, call, target)


STACKS: dict[str, Callable[[str, Target], Coroutine[Any, Any, Result]]] = {
    "httpx + AsyncHTTPTransport (default)": httpx_default,
    "httpx + httpx_aiohttp.AiohttpTransport": httpx_over_aiohttp,
    "aiohttp.ClientSession": plain_aiohttp,
    "parkstream ControllerClient (default_transport)": controller_client,
}


def _table(results: list[Result]) -> str:
    lines = [
        "| client stack | calls/s | client CPU ms/call | p50 ms | p99 ms "
        "| keep-alive loop p50 ms (idle) | server CPU busy | connections |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.stack} | {r.calls_per_second:,.0f} | {r.cpu_ms_per_call:.3f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.sequential_ms:.3f} ({r.sequential_wait_ms:.3f}) "
            f"| {100 * r.server_busy:.0f}% | {r.connections} |"
        )
    return "\n".join(lines)


def main(duration: float = DURATION_SECONDS, warmup: float = WARMUP_SECONDS) -> list[Result]:
    """Run every stack against a fresh local server; print and return the results."""
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, cpus[-1] if pinned else None), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("benchmark server did not start")
        assert server.pid is not None
        target = Target(f"http://127.0.0.1:{parent.recv()}", server.pid, duration, warmup)
        if pinned:  # the client on the other CPUs, the server alone on its own
            os.sched_setaffinity(0, set(cpus[:-1]))
        results = []
        for stack, run in STACKS.items():
            result = asyncio.run(run(stack, target))
            results.append(result)
            print(
                f"{stack}: {result.calls_per_second:,.0f} calls/s, "
                f"{result.cpu_ms_per_call:.3f} ms CPU/call",
                flush=True,
            )
    finally:
        os.sched_setaffinity(0, set(cpus))
        server.terminate()
        server.join(5)
    print(
        f"\n{CONCURRENCY} concurrent keep-alive calls, {duration:g} s each after "
        f"{warmup:g} s warm-up; server {'pinned to CPU ' + str(cpus[-1]) if pinned else 'unpinned'}"
    )
    print(_table(results))
    # Nagle + delayed ACK shows as ~40 ms of idle time per keep-alive call.
    stalled = [r.stack for r in results if r.sequential_wait_ms >= DELAYED_ACK_SUSPECT_MS]
    if stalled:
        print(
            f"WARNING: keep-alive calls idle >= {DELAYED_ACK_SUSPECT_MS} ms (delayed ACK?): {stalled}"
        )
    else:
        print(
            f"keep-alive loop idles < {DELAYED_ACK_SUSPECT_MS} ms/call everywhere: no delayed-ACK stall"
        )
    return results


if __name__ == "__main__":
    main()
