"""The worker's table state: its memory, and the time from a start to ready (issue 14).

Three measurements, each on its own Tansu broker, with every process of the stack on
this machine and ``PARKSTREAM_PRODUCER_BATCH_MESSAGES=1`` (docs/local-broker.md):

1. **Seeding check.** The changelogs get ``CHECK_SESSIONS`` seeded sessions (below); a
   worker recovers them, once per store, and must answer ``GET /sessions/{ref}`` for
   seeded sessions exactly as seeded, drop a repeated push of one by its dedupe entry
   and skip a repeated update of one by its journal entry, with no Controller call. Any
   difference raises: the figures below would measure the wrong tables.
2. **Start to ready, RSS once ready**, for each size in ``PARKSTREAM_BENCH_TABLE_SESSIONS``
   (default 100,000 and 1,000,000 sessions), ``PARKSTREAM_BENCH_TABLE_RUNS`` times (2, 1):
   RocksDB cold (data dir wiped: every table rebuilt from its changelog), RocksDB warm
   (the data dir the cold start left), and the memory store (always rebuilt). Time from
   the worker's process start to its first ``/readyz`` 200; the phases come from Faust's
   recovery log lines, stamped as they appear.
3. **RSS while live sessions flow**, per store: ``PARKSTREAM_BENCH_LIVE_SESSIONS`` (10,000)
   sessions published (push, update, delete) onto the sessions topic by the Python
   publisher, paced to stay ``LIVE_AHEAD`` sessions ahead of the worker; one worker
   applies them to the sandbox Controller; the worker's RSS is sampled against the
   sessions whose delete was applied.

``PARKSTREAM_BENCH_REPLOT=a.json[,b.json]`` measures nothing: it draws the plot from the
figures earlier runs saved beside theirs (e.g. one run's 100,000 and another's 1,000,000).

Seeding. Live traffic reaches ~40 sessions a second here, so the large tables are
written straight into the changelogs: per session the final records the worker leaves
after its push, update and delete (a compacted changelog's content): the ``sessions``
entry ``{"state": "deleted", "controller_ref", "end", "at"}``, three journal ``done``
entries and the dedupe entry, five records, in the partition of the session's key
(the sessions topic's murmur2 partition), serialized by the worker's own tables
(``Topic.prepare_key``/``prepare_value`` of a worker built from the same settings, as
``foundation.worker.durable`` sends them). ``zone_stats`` is not seeded: it holds a row
per zone and day, not per session. Writes: ``benchmarks/tables.png``
(``PARKSTREAM_BENCH_PLOT``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import _profile
from benchmarks._stack import Processes, processes, stack_env
from consumers.journal import done_entry
from consumers.sessions import session_key
from foundation.broker import LocalBroker
from foundation.kafka import ensure_topics, producer_config, topic_config
from foundation.settings import Settings
from parkstream.worker import build_worker
from producers.events import accept
from producers.publish import Publisher
from producers.references import ReferenceIssuer
from schemas.status import SessionState
from streams.plan import command_id
from streams.planning import dedupe_key

# Empty: no seeded sizes, only the seeding check and the live part.
SIZES = [
    int(n)
    for n in os.environ.get("PARKSTREAM_BENCH_TABLE_SESSIONS", "100000,1000000").split(",")
    if n
]
# Runs per size: the cold and memory starts at 1,000,000 sessions take ~50 minutes each here.
RUNS = [int(n) for n in os.environ.get("PARKSTREAM_BENCH_TABLE_RUNS", "2,1").split(",")]
RUNS += RUNS[-1:] * (len(SIZES) - len(RUNS))
del RUNS[len(SIZES) :]
LIVE_SESSIONS = int(os.environ.get("PARKSTREAM_BENCH_LIVE_SESSIONS", "10000"))
PLOT = Path(os.environ.get("PARKSTREAM_BENCH_PLOT", Path(__file__).with_name("tables.png")))
# A worker not ready after this long is reported as such (and stopped).
READY_TIMEOUT = float(os.environ.get("PARKSTREAM_BENCH_READY_TIMEOUT", "4800"))
CHECK_SESSIONS = 2000
SEED_PROCESSES = 2
# Seconds after a worker stopped before the next one starts (see ``recovery``).
GROUP_WAIT = 12.0
LIVE_AHEAD = 200
VENDOR = "bench"
STORES = ("rocksdb", "memory")
ENDPOINTS = ("permits/push", "permits/update", "permits/delete")
# Faust's recovery log lines: the phases of a start.
PHASES = {
    "reading": "Restoring state from changelog topics",
    "read": "Done reading from changelog topics",
    "restored": "Restore complete!",
    "worker_ready": "Worker ready",
}


def rss_mib(pid: int, field_name: str = "VmRSS") -> float:
    """A process's resident set (``VmRSS``) or its peak (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (a counter's ``_total``) with ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


# --- seeding -------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A session as the worker leaves it after its push, update and delete were applied."""

    session_id: str
    event_ids: tuple[str, str, str]  # push, update, delete
    controller_ref: str
    push: dict[str, Any] = field(default_factory=dict)  # the requests, for check sessions
    update: dict[str, Any] = field(default_factory=dict)
    update_key: str = ""


def _times(start: datetime) -> dict[str, str]:
    return {
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


def push_body(index: int, start: datetime) -> dict[str, Any]:
    return {
        "Amount": "4.50",
        "CurrencyID": "CAD",
        "LicencePlate": f"TB{index:07d}",
        "zone": "Lot 4",
        "permitNo": f"TB-{index}",
        **_times(start),
    }


def update_body(reference: str, index: int, start: datetime) -> dict[str, Any]:
    return {
        "referenceID": reference,
        "plate": f"TB{index:07d}",
        "Amount": "6.00",
        "currency": "CAD",
        "endTime": _times(start + timedelta(hours=1))["endTime"],
    }


def check_session(index: int, start: datetime, references: ReferenceIssuer) -> Session:
    """A seeded session whose ids are those the publisher gives its requests: pushing it
    again, or repeating its update (same idempotency key), reaches the same table keys."""
    push = push_body(index, start)
    pushed = accept("permits/push", push, VENDOR, references, require_token=False)
    reference = pushed.reference_id
    update = update_body(reference, index, start)
    update_key = f"bench-update-{index}"
    updated = accept(
        "permits/update",
        update,
        VENDOR,
        references,
        idempotency_key=update_key,
        require_token=False,
    )
    deleted = accept(
        "permits/delete",
        {"referenceID": reference},
        VENDOR,
        references,
        idempotency_key=f"bench-delete-{index}",
        require_token=False,
    )
    ids = (pushed.record["event_id"], updated.record["event_id"], deleted.record["event_id"])
    return Session(reference, ids, str(uuid.uuid4()), push, update, update_key)


def bulk_session(index: int, references: ReferenceIssuer) -> Session:
    """Seeded session ``index``: ids of the same shapes, made cheaply (no request validated)."""
    digest = hashlib.sha256(f"bench-{index}".encode()).digest()
    ids = [str(uuid.UUID(bytes=digest[n : n + 16], version=4)) for n in (0, 4, 8, 12)]
    return Session(references.reference_id(VENDOR, digest.hex()), (ids[0], ids[1], ids[2]), ids[3])


def session_writes(
    session: Session, partition: int, at: datetime, end: datetime
) -> Iterator[tuple[str, Any, Any]]:
    """``(table, key, value)`` of every entry the worker holds for ``session``."""
    stamp = at.isoformat()
    yield (
        "sessions",
        session_key(session.session_id),
        {
            "state": SessionState.DELETED,
            "controller_ref": session.controller_ref,
            "end": end.isoformat(),
            "at": stamp,
        },
    )
    for event_id, endpoint in zip(session.event_ids, ENDPOINTS, strict=True):
        yield (
            "journal",
            command_id(event_id, endpoint),
            {**done_entry(at, "applied"), "partition": partition},
        )
    fingerprint = hashlib.sha256(session.event_ids[2].encode()).hexdigest()[:32]
    yield (
        "dedupe",
        dedupe_key("sessions", session.session_id.encode()),
        {"last": fingerprint, "at": stamp, "created": True},
    )


@dataclass
class SeedReport:
    sessions: int
    records: int
    seconds: float


# What the seeding processes share (set before they are forked).
_SEEDING: dict[str, Any] = {}


def seed(settings: Settings, sessions: int, check: list[Session]) -> SeedReport:
    """Write ``sessions`` sessions (``check`` first, then bulk ones) into the changelogs,
    from ``SEED_PROCESSES`` processes (the broker takes one record a batch faster from
    several connections)."""
    tables = {
        name: cast(faust.Table[Any, Any], t)
        for name, t in build_worker(settings).app.tables.items()
    }
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    created = admin.create_topics(
        [
            NewTopic(
                table.changelog_topic.get_topic_name(),
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                config={"cleanup.policy": "compact", **topic_config(settings)},
            )
            for table in tables.values()
        ]
    )
    for future in created.values():
        future.result(30)
    _SEEDING.update(settings=settings, tables=tables, check=check, at=datetime.now(UTC))
    began = time.perf_counter()
    step = -(-sessions // SEED_PROCESSES)
    ranges = [(first, min(sessions, first + step)) for first in range(0, sessions, step)]
    with multiprocessing.get_context("fork").Pool(len(ranges)) as pool:
        records = sum(pool.starmap(_seed_range, ranges))
    return SeedReport(sessions, records, time.perf_counter() - began)


def _seed_range(first: int, stop: int) -> int:
    """Produce sessions ``first`` to ``stop`` (in a seeding process); the records sent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its processes with it
    settings: Settings = _SEEDING["settings"]
    tables: dict[str, faust.Table[Any, Any]] = _SEEDING["tables"]
    check: list[Session] = _SEEDING["check"]
    producer = Producer(
        producer_config(
            settings.kafka_bootstrap_servers,
            batch_messages=1,  # Tansu: one record a batch, or Faust's recovery stops early
            **{
                # Each key is written once: no order to keep, so many requests in flight.
                "enable.idempotence": False,
                "max.in.flight.requests.per.connection": 64,
                "linger.ms": 20,
                # A short local queue, and no time limit: a record waits for the broker,
                # however slow, instead of timing out in the queue.
                "queue.buffering.max.messages": 50_000,
                "message.timeout.ms": 0,
            },
        )
    )
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    partitioner = DefaultPartitioner()
    everything = list(range(settings.topic_partitions))
    references = ReferenceIssuer(settings.reference_secret)
    at: datetime = _SEEDING["at"]
    end = at + timedelta(hours=2)
    records = 0
    for index in range(first, stop):
        session = check[index] if index < len(check) else bulk_session(index, references)
        partition = partitioner(session.session_id.encode(), everything, everything)
        for table_name, key, value in session_writes(session, partition, at, end):
            table = tables[table_name]
            topic = table.changelog_topic
            raw_key, _ = topic.prepare_key(key, table.key_serializer)
            raw_value, _ = topic.prepare_value(value, table.value_serializer)
            while True:
                try:
                    producer.produce(
                        topic.get_topic_name(),
                        key=raw_key,
                        value=raw_value,
                        partition=partition,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            records += 1
        if index % 1000 == 0:
            producer.poll(0)
    left = producer.flush(3600)
    if left or failures:
        raise RuntimeError(f"seeding: {left} records unsent, failures: {failures[:3]}")
    return records


# --- a worker's start ------------------------------------------------------------------


@dataclass
class Start:
    """One worker start: seconds to ``/readyz`` 200, RSS then and its peak (MiB)."""

    store: str
    way: str  # cold, warm, memory
    sessions: int
    seconds: float | None  # None: not ready in READY_TIMEOUT, or the worker exited
    rss: float
    peak: float
    phases: dict[str, float]
    note: str = ""
    disk_mib: float = 0.0
    worker_cpu: float = 0.0  # CPU seconds the worker used to get ready
    broker_cpu: float = 0.0  # and the broker meanwhile


def _new_lines(log_path: Path, offset: int) -> tuple[list[str], int]:
    if not log_path.exists():
        return [], offset
    with open(log_path, "rb") as log:
        log.seek(offset)
        data = log.read()
    complete = data.rfind(b"\n") + 1
    return data[:complete].decode(errors="replace").splitlines(), offset + complete


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(
    procs: Processes,
    env: dict[str, str],
    way: str,
    sessions: int,
    log_name: str,
    broker_pid: int = 0,
    profile: Path | None = None,
) -> tuple[Start, Any]:
    """Start a worker, wait for ``/readyz`` 200 (timing Faust's recovery phases, the CPU the
    worker and the broker used meanwhile; with ``profile``, py-spy's raw stacks of the
    worker go there); return the measurement and the running process (the caller stops it)."""
    url = f"http://127.0.0.1:{env['PARKSTREAM_WORKER_WEB_PORT']}/readyz"
    log_path = procs.log_dir / f"{log_name}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    broker_cpu = cpu_seconds(broker_pid) if broker_pid else 0.0
    began = time.perf_counter()
    proc = procs.start("worker", env, wait=False, log_name=log_name)
    spy = _profile.sample(proc.pid, profile) if profile else None
    started = Start(env["PARKSTREAM_TABLE_STORE"], way, sessions, None, 0.0, 0.0, {})
    try:
        while True:
            now = time.perf_counter() - began
            lines, offset = _new_lines(log_path, offset)
            for line in lines:
                for phase, text in PHASES.items():
                    if text in line and phase not in started.phases:
                        started.phases[phase] = now
            if proc.poll() is not None:
                started.note = f"worker exited with code {proc.returncode} after {now:.0f} s"
                return started, proc
            started.peak = max(started.peak, rss_mib(proc.pid, "VmHWM"))
            started.rss = rss_mib(proc.pid)
            started.worker_cpu = cpu_seconds(proc.pid)
            if now > READY_TIMEOUT:
                started.note = f"not ready after {READY_TIMEOUT:.0f} s"
                return started, proc
            try:
                status, _ = _get(url, timeout=2)
            except OSError:
                status = 0
            if status == 200:
                started.seconds = time.perf_counter() - began
                started.rss = rss_mib(proc.pid)
                started.peak = max(started.peak, rss_mib(proc.pid, "VmHWM"))
                started.worker_cpu = cpu_seconds(proc.pid)
                return started, proc
            time.sleep(0.1)
    finally:
        if broker_pid:
            started.broker_cpu = cpu_seconds(broker_pid) - broker_cpu
        _profile.stop(spy)


# Where a recovering worker's CPU goes: a sample counts for the first group any of its
# frames belongs to (py-spy's raw stacks, ``function (file:line)`` per frame).
PROFILE_GROUPS = (
    ("decoding keys and values (JSON)", ("faust/serializers/",)),
    ("RocksDB writes", ("faust/stores/rocksdb.py", "rocksdict")),
    ("memory store writes", ("faust/stores/memory.py",)),
    (
        "recovery bookkeeping per record (remaining offsets)",
        ("Recovery.need_recovery", "Recovery.active_remaining", "_maybe_signal_recovery_end"),
    ),
    ("aiokafka's consumer thread (fetch, record parsing)", ("WorkerThread.run", "aiokafka/")),
    (
        "Faust's per-record delivery (messages, events, tasks)",
        ("faust/transport/", "faust/tables/", "faust/channels", "faust/topics"),
    ),
    ("event loop (select, callbacks)", ("asyncio/", "selectors.py")),
    ("other (start-up: imports, services)", ("",)),
)


def profile_summary(path: Path) -> str:
    """The share of the worker's CPU samples in each of ``PROFILE_GROUPS``."""
    found = _profile.shares(path, PROFILE_GROUPS)
    if found is None:
        return "no profile (py-spy not installed or not permitted)"
    return ", ".join(
        f"{name} {100 * share:.0f}%" for name, share in found.items() if name != "other"
    )


def _du_mib(path: Path) -> float:
    return (
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2
        if path.exists()
        else 0.0
    )


# --- the seeding check -----------------------------------------------------------------


def _check_recovered(env: dict[str, str], sessions: list[Session], sample: list[Session]) -> None:
    """The running worker holds ``sessions`` and ``sample`` as seeded, and its journal and
    dedupe entries of ``sessions`` take effect; raises ``AssertionError`` otherwise."""
    web = f"http://127.0.0.1:{env['PARKSTREAM_WORKER_WEB_PORT']}"
    for session in [*sessions, *sample]:
        status, body = _get(f"{web}/sessions/{session.session_id}")
        got = json.loads(body) if status == 200 else {}
        if (
            status != 200
            or got.get("state") != "deleted"
            or got.get("controller_reference_id") != session.controller_ref
        ):
            raise AssertionError(
                f"seeding check: GET /sessions/{session.session_id} answered {status} {got}; "
                f"seeded state deleted, controller_ref {session.controller_ref}"
            )
    settings = Settings.from_env(env)
    metrics_before = _get(f"{web}/metrics")[1].decode()
    with Publisher(settings, vendor=VENDOR) as publisher:
        for session in sessions:
            publisher.push_permit(session.push)
            publisher.update_permit(session.update, idempotency_key=session.update_key)
    expected = {
        ("parkstream_dedupe_dropped_total", "topic", "sessions"): len(sessions),
        ("parkstream_journal_reconciled_total", "outcome", "skipped"): len(sessions),
    }
    deadline = time.monotonic() + 60
    while True:
        text = _get(f"{web}/metrics")[1].decode()
        seen = {
            what: _metric(text, what[0], **{what[1]: what[2]})
            - _metric(metrics_before, what[0], **{what[1]: what[2]})
            for what in expected
        }
        if seen == expected:
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"seeding check: repeated pushes and updates of seeded sessions gave {seen}, "
                f"expected {expected}: the seeded dedupe or journal entries were not recovered"
            )
        time.sleep(0.5)
    calls = _metric(text, "parkstream_controller_calls_total") - _metric(
        metrics_before, "parkstream_controller_calls_total"
    )
    if calls:
        raise AssertionError(f"seeding check: {calls:.0f} Controller calls for repeated events")


def check_seeding(tmp: Path) -> list[str]:
    """Seed ``CHECK_SESSIONS`` sessions; a worker of each store must recover them exactly."""
    lines = []
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with LocalBroker(log_path=tmp / "broker.log") as broker, processes(tmp) as procs:
        env = stack_env(broker.bootstrap_servers, tmp / "data")
        settings = Settings.from_env(env)
        ensure_topics(settings)
        references = ReferenceIssuer(settings.reference_secret)
        check = [check_session(i, start, references) for i in range(8)]
        report = seed(settings, CHECK_SESSIONS, check)
        sample = [bulk_session(i, references) for i in range(len(check), CHECK_SESSIONS, 97)]
        procs.start("sandbox", env)
        for number, store in enumerate(STORES):
            env_store = {**env, "PARKSTREAM_TABLE_STORE": store}
            started, proc = start_worker(procs, env_store, "cold", CHECK_SESSIONS, f"check-{store}")
            if started.seconds is None:
                raise AssertionError(f"seeding check: {store} worker {started.note}")
            _check_recovered(env_store, check[number * 4 : number * 4 + 4], sample)
            procs.stop(proc)
            lines.append(
                f"  {store}: recovered {report.sessions} seeded sessions in {started.seconds:.1f} s; "
                "sessions, journal and dedupe entries read back as seeded"
            )
    return lines


# --- start to ready with seeded tables -------------------------------------------------


@dataclass
class SizeReport:
    seeded: SeedReport
    starts: list[Start]
    broker_rss: float


def recovery(tmp: Path, sessions: int, runs: int, profile: bool) -> SizeReport:
    """Seed ``sessions``; then, ``runs`` times: RocksDB cold, RocksDB warm, memory. With
    ``profile``, the first run's cold and memory starts are sampled by py-spy."""
    with LocalBroker(log_path=tmp / "broker.log") as broker, processes(tmp) as procs:
        data = tmp / "data"
        env = stack_env(broker.bootstrap_servers, data, PARKSTREAM_LOG_LEVEL="info")
        settings = Settings.from_env(env)
        ensure_topics(settings)
        seeded = seed(settings, sessions, [])
        print(
            f"  {sessions:,} sessions seeded: {seeded.records:,} records in {seeded.seconds:.0f} s "
            f"({seeded.records / seeded.seconds:,.0f} records/s); broker RSS "
            f"{rss_mib(broker.pid or 0):,.0f} MiB",
            flush=True,
        )
        procs.start("sandbox", env)
        starts = []
        for run in range(runs):
            shutil.rmtree(data / "worker", ignore_errors=True)
            for way, store in (("cold", "rocksdb"), ("warm", "rocksdb"), ("memory", "memory")):
                env_way = {**env, "PARKSTREAM_TABLE_STORE": store}
                name = f"worker-{sessions}-{run}-{way}"
                stacks = tmp / f"{name}.pyspy" if profile and run == 0 and way != "warm" else None
                started, proc = start_worker(
                    procs, env_way, way, sessions, name, broker.pid or 0, stacks
                )
                procs.stop(proc, 120)
                # The group drops a stopped worker only when its session times out
                # (broker_session_timeout, 10 s): each start begins with an empty group.
                time.sleep(GROUP_WAIT)
                started.disk_mib = _du_mib(data / "worker") if store == "rocksdb" else 0.0
                starts.append(started)
                print(f"    run {run + 1}: {_describe(started)}", flush=True)
                if stacks is not None:
                    print(
                        f"      where the worker's CPU went: {profile_summary(stacks)}", flush=True
                    )
        return SizeReport(seeded, starts, rss_mib(broker.pid or 0))


def _describe(start: Start) -> str:
    if start.seconds is None:
        return f"{start.way:6} {start.note}; RSS {start.rss:,.0f} MiB, peak {start.peak:,.0f} MiB"
    phases = " ".join(f"{name}@{at:.1f}s" for name, at in start.phases.items())
    disk = f", on disk {start.disk_mib:,.0f} MiB" if start.disk_mib else ""
    return (
        f"{start.way:6} ready in {start.seconds:7.1f} s, RSS {start.rss:7,.0f} MiB "
        f"(peak {start.peak:,.0f}){disk}; CPU worker {start.worker_cpu:,.0f} s, broker "
        f"{start.broker_cpu:,.0f} s  [{phases}]"
    )


# --- RSS while live sessions flow -------------------------------------------------------


@dataclass
class LiveReport:
    store: str
    samples: list[tuple[int, float]]  # (sessions applied, RSS MiB)
    seconds: float


def live(tmp: Path, store: str, sessions: int) -> LiveReport:
    """Publish ``sessions`` sessions (push, update, delete); sample the worker's RSS."""
    with LocalBroker(log_path=tmp / "broker.log") as broker, processes(tmp) as procs:
        env = stack_env(broker.bootstrap_servers, tmp / "data", PARKSTREAM_TABLE_STORE=store)
        settings = Settings.from_env(env)
        ensure_topics(settings)
        procs.start("sandbox", env)
        started, worker = start_worker(procs, env, "live", 0, f"live-{store}")
        if started.seconds is None:
            raise RuntimeError(f"live {store}: worker {started.note}")
        metrics = f"http://127.0.0.1:{env['PARKSTREAM_WORKER_WEB_PORT']}/metrics"
        begin = datetime.now(UTC).replace(microsecond=0)
        samples = [(0, rss_mib(worker.pid))]
        published = applied = 0
        next_sample = time.monotonic()
        began = time.perf_counter()
        with Publisher(settings, vendor=VENDOR) as publisher:
            while applied < sessions:
                if worker.poll() is not None:
                    raise RuntimeError(f"live {store}: the worker exited with {worker.returncode}")
                while published < min(sessions, applied + LIVE_AHEAD):
                    pushed = publisher.push_permit(push_body(published, begin))
                    reference = pushed.reference_id
                    publisher.update_permit(update_body(reference, published, begin))
                    publisher.delete_permit({"referenceID": reference})
                    published += 1
                publisher.poll(0)
                if time.monotonic() >= next_sample:
                    text = _get(metrics)[1].decode()
                    applied = int(
                        _metric(
                            text,
                            "parkstream_controller_calls_total",
                            endpoint="permits/delete",
                            outcome="applied",
                        )
                    )
                    samples.append((applied, rss_mib(worker.pid)))
                    next_sample += 2.0
                time.sleep(0.05)
        seconds = time.perf_counter() - began
        rejected = _metric(_get(metrics)[1].decode(), "parkstream_dead_letters_total")
        if rejected:
            raise RuntimeError(f"live {store}: {rejected:.0f} dead letters; see {tmp}")
        procs.stop(worker)
        return LiveReport(store, samples, seconds)


# --- the plot ----------------------------------------------------------------------------


def plot(lives: list[LiveReport], sizes: list[SizeReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    colours = {"rocksdb": "tab:blue", "memory": "tab:orange"}
    figure, (memory_axes, time_axes) = plt.subplots(1, 2, figsize=(13, 5.2))
    for report in lives:
        xs = [max(n, 1) for n, _ in report.samples]
        memory_axes.plot(
            xs,
            [rss for _, rss in report.samples],
            color=colours[report.store],
            label=f"{report.store}, live",
        )
    for store, way, marker in (
        ("rocksdb", "cold", "o"),
        ("rocksdb", "warm", "s"),
        ("memory", "memory", "^"),
    ):
        points = [
            (s.sessions, s.rss) for size in sizes for s in size.starts if s.way == way and s.seconds
        ]
        if points:
            memory_axes.scatter(
                *zip(*points, strict=True),
                color=colours[store],
                marker=marker,
                label=f"{store} {way if store == 'rocksdb' else ''} start, seeded".replace(
                    "  ", " "
                ),
            )
    memory_axes.set_xscale("log")
    memory_axes.set_yscale("log")
    memory_axes.yaxis.set_major_locator(ticker.FixedLocator([50, 100, 200, 500, 1000, 2000, 5000]))
    memory_axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
    memory_axes.yaxis.set_minor_formatter(ticker.NullFormatter())
    memory_axes.set_xlabel("sessions in the tables (live: sessions applied so far)")
    memory_axes.set_ylabel("worker RSS (MiB)")
    memory_axes.set_title("Worker memory")
    memory_axes.grid(True, which="both", alpha=0.3)
    memory_axes.legend(fontsize=8)

    ways = (("cold", "RocksDB cold"), ("warm", "RocksDB warm"), ("memory", "memory store"))
    width = 0.8 / len(ways)
    for offset, (way, label) in enumerate(ways):
        heights, lows, highs, labels = [], [], [], []
        for size in sizes:
            seconds = [s.seconds for s in size.starts if s.way == way and s.seconds is not None]
            middle = statistics.median(seconds) if seconds else 0.0
            heights.append(middle)
            lows.append(middle - min(seconds, default=0.0))
            highs.append(max(seconds, default=0.0) - middle)
            tried = any(s.way == way for s in size.starts)
            labels.append(f"{middle:.0f} s" if seconds else "not ready" if tried else "not run")
        positions = [i + (offset - 1) * width for i in range(len(sizes))]
        colour = {"cold": "tab:blue", "warm": "tab:cyan", "memory": "tab:orange"}[way]
        bars = time_axes.bar(
            positions, heights, width, yerr=[lows, highs], label=label, color=colour, capsize=3
        )
        time_axes.bar_label(bars, labels=labels, fontsize=8, padding=2)
        for position, height, label in zip(positions, heights, labels, strict=True):
            if not height:  # no bar on a log scale: say why at its foot
                time_axes.annotate(
                    label,
                    (position, 1.0),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    ha="center",
                    va="top",
                    fontsize=8,
                    xytext=(0, -4),
                    textcoords="offset points",
                )
    time_axes.set_xticks(
        range(len(sizes)), [f"{size.seeded.sessions:,} sessions" for size in sizes]
    )
    time_axes.set_ylabel("seconds from process start to /readyz 200")
    time_axes.set_title("Start to ready (median, range over runs)")
    time_axes.set_yscale("log")
    time_axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
    time_axes.grid(True, axis="y", which="both", alpha=0.3)
    time_axes.legend(fontsize=8)
    figure.suptitle("parkstream worker tables: memory and recovery (benchmarks/tables.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def load(path: Path) -> tuple[list[LiveReport], list[SizeReport]]:
    """The figures ``save`` wrote."""
    figures = json.loads(path.read_text())
    lives = [
        LiveReport(r["store"], [(n, rss) for n, rss in r["samples"]], r["seconds"])
        for r in figures["live"]
    ]
    sizes = [
        SizeReport(SeedReport(**r["seeded"]), [Start(**s) for s in r["starts"]], r["broker_rss"])
        for r in figures["seeded"]
    ]
    return lives, sizes


def replot(paths: list[Path]) -> None:
    """Draw the plot (and write its JSON) from the figures of earlier runs: their live
    reports and seeded sizes together, sizes in order."""
    lives: list[LiveReport] = []
    sizes: list[SizeReport] = []
    for path in paths:
        more_lives, more_sizes = load(path)
        lives += more_lives
        sizes += more_sizes
    sizes.sort(key=lambda size: size.seeded.sessions)
    plot(lives, sizes, PLOT)
    save(lives, sizes, PLOT.with_suffix(".json"))
    print(f"  plot: {PLOT}, from {', '.join(map(str, paths))}")


def save(lives: list[LiveReport], sizes: list[SizeReport], path: Path) -> None:
    """The figures behind the plot, as JSON beside it."""
    figures = {"live": [asdict(r) for r in lives], "seeded": [asdict(r) for r in sizes]}
    path.write_text(json.dumps(figures, indent=1) + "\n")


def main() -> None:
    earlier = os.environ.get("PARKSTREAM_BENCH_REPLOT")  # JSON files of earlier runs
    if earlier:
        replot([Path(name) for name in earlier.split(",")])
        return
    print(
        f"tables: seeding check ({CHECK_SESSIONS:,} sessions), start to ready with "
        f"{', '.join(f'{n:,} x {r} runs' for n, r in zip(SIZES, RUNS, strict=True))} seeded sessions, "
        f"{LIVE_SESSIONS:,} live sessions per store",
        flush=True,
    )
    # A SIGTERM unwinds like an error: every process started so far is stopped.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    keep = os.environ.get("PARKSTREAM_BENCH_KEEP_DIR")  # logs and files kept there
    with contextlib.ExitStack() as stack:
        if keep:
            root = Path(tempfile.mkdtemp(prefix="bench-tables-", dir=keep))
            print(f"  logs and files: {root}")
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tables-")))
        for directory in ("check", *(f"size-{n}" for n in SIZES), *(f"live-{s}" for s in STORES)):
            (root / directory).mkdir()
        for line in check_seeding(root / "check"):
            print(line, flush=True)
        lives: list[LiveReport] = []
        for store in STORES if LIVE_SESSIONS else ():
            report = live(root / f"live-{store}", store, LIVE_SESSIONS)
            first, last = report.samples[0], report.samples[-1]
            print(
                f"  live {store}: {last[0]:,} sessions in {report.seconds:.0f} s "
                f"({last[0] / report.seconds:.0f}/s); RSS {first[1]:,.0f} MiB at start, "
                f"{last[1]:,.0f} MiB at the end",
                flush=True,
            )
            lives.append(report)
        sizes: list[SizeReport] = []
        for number, (sessions, runs) in enumerate(zip(SIZES, RUNS, strict=True)):
            sizes.append(recovery(root / f"size-{sessions}", sessions, runs, number == 0))
            plot(lives, sizes, PLOT)  # drawn again as each size is done
            save(lives, sizes, PLOT.with_suffix(".json"))
        if not sizes:
            plot(lives, sizes, PLOT)
            save(lives, sizes, PLOT.with_suffix(".json"))
    print(f"  plot: {PLOT}")
