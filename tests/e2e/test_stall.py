"""A worker never hangs silently (issue 11, item 0).

Faust stops handing records to every stream while its producer buffer holds more than 100
records, and the buffer filled whenever an agent wrote tables faster than the broker
acknowledged (``producer buffer full`` in the log); a restarted worker once sat like that,
making no progress, for nine minutes with /readyz ready. Nothing writes through that
buffer any more, and a worker that has work and makes no progress exits with code 70.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from confluent_kafka import Producer

from foundation.broker import LocalBroker
from foundation.kafka import PARTITIONER, ensure_topics
from foundation.settings import Settings
from foundation.worker.watchdog import EXIT_STALLED
from schemas.avro import codec
from tests.e2e.conftest import metric_value, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BACKLOG = 6000
SESSIONS = 300


def applied_result(index: int, now: datetime) -> dict:
    return {
        "command_id": f"backlog-{index}:permits/push",
        "event_id": f"backlog-{index}",
        "session_id": f"backlog-session-{index}",
        "endpoint": "permits/push",
        "vendor": "hotspot",
        "outcome": "APPLIED",
        "controller_reference_id": f"ctl-{index}",
        "error_code": None,
        "error_message": None,
        "http_status": 200,
        "attempts": 1,
        "zone": f"Lot {index % 7}",
        "amount": None,
        "currency": None,
        "start_time": now,
        "end_time": now + timedelta(hours=2),
        "completed_at": now,
    }


def permit(index: int, start: datetime) -> dict[str, str]:
    return {
        "LicencePlate": f"ST{index:05d}",
        "zone": "Lot 1",
        "permitNo": f"STALL-{index}",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
    }


async def test_a_worker_meeting_a_backlog_of_table_writes_never_fills_fausts_buffer(stack):
    # 6,000 results waiting: the stats agent writes three table rows for each, far faster
    # than one-record batches are acknowledged. Once, that held every stream back.
    settings = stack.settings
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "partitioner": PARTITIONER,
            "batch.num.messages": 1,
        }
    )
    now = datetime.now(UTC).replace(microsecond=0)
    for index in range(BACKLOG):
        value = codec().encode("ControllerResult", applied_result(index, now))
        producer.produce(
            settings.topic("results"), key=f"backlog-session-{index}".encode(), value=value
        )
        if index % 500 == 0:
            producer.flush()
    producer.flush()
    stack.start_sandbox()
    stack.start_gateway()
    start = now - timedelta(minutes=5)
    async with httpx.AsyncClient(timeout=30) as http:
        for index in range(SESSIONS):
            await stack.push(http, permit(index, start))
        worker = stack.start_worker()

        async def all_landed() -> bool:
            return len(await stack.sandbox_permits(http)) >= SESSIONS

        await wait_until(all_landed, timeout=300, interval=2)
        text = await stack.worker_metrics(http)
    assert metric_value(text, "parkstream_worker_seconds_without_progress") < 60
    assert "producer buffer full" not in worker.log()


async def test_records_fetched_and_never_handed_over_are_fetched_again(stack):
    # Faust's getmany drops the rest of a fetched batch when the group's generation changes
    # while it hands the batch over, and its fetch position is past those records (seen
    # after two quick rebalances: 1,311 records waiting, nothing handed over, the worker
    # ended by the watchdog). This worker drops one batch so (tests/support/dropping_worker).
    stack.start_sandbox()
    stack.start_gateway()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    async with httpx.AsyncClient(timeout=30) as http:
        for index in range(30):
            await stack.push(http, permit(index, start))
        worker = stack.start_worker(module="tests.support.dropping_worker")

        async def all_landed() -> bool:
            return len(await stack.sandbox_permits(http)) >= 30

        await wait_until(all_landed, timeout=120, interval=2)
        text = await stack.worker_metrics(http)
    log = worker.log()
    assert "DROPPED" in log, log[-3000:]  # the batch was dropped...
    assert "fetching the partition again" in log  # ...and fetched again, not waited out
    assert metric_value(text, "parkstream_partition_refetches_total", topic="sessions") >= 1
    assert worker.proc is not None and worker.proc.poll() is None  # not ended by the watchdog


async def test_a_worker_with_work_and_no_progress_exits_with_code_70(tmp_path, stack_env):
    # A broker of its own, frozen (SIGSTOP) while the worker has calls in flight: nothing
    # is acknowledged, nothing progresses. The worker must not sit there.
    from tests.support.processes import ParkstreamProcess

    with LocalBroker(log_path=tmp_path / "frozen-broker.log") as broker:
        env = {
            **stack_env,
            "PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "PARKSTREAM_WORKER_STALL_SECONDS": "45",
            "PARKSTREAM_SANDBOX_FAULT_LATENCY_MS": "3000",
            "PARKSTREAM_CONTROLLER_URL": f"http://127.0.0.1:{stack_env['PARKSTREAM_SANDBOX_PORT']}",
        }
        ensure_topics(Settings.from_env(env))
        processes = [
            ParkstreamProcess(name, env, tmp_path / f"{name}.log", int(env[port]))
            for name, port in (
                ("sandbox", "PARKSTREAM_SANDBOX_PORT"),
                ("worker", "PARKSTREAM_WORKER_WEB_PORT"),
                ("gateway", "PARKSTREAM_GATEWAY_PORT"),
            )
        ]
        try:
            for process in processes:
                process.start()
            worker = processes[1]
            gateway_url = f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_PORT']}"
            metrics_url = f"http://127.0.0.1:{env['PARKSTREAM_WORKER_WEB_PORT']}/metrics"
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
            async with httpx.AsyncClient(timeout=10) as http:
                for index in range(20):
                    body = {"apiToken": stack_env_token(env), **permit(index, start)}
                    answer = await http.post(
                        f"{gateway_url}/api/{env['PARKSTREAM_CONTROLLER_CLIENT']}/v1/permits/push",
                        json=body,
                    )
                    assert answer.status_code == 200, answer.text

                async def calling() -> bool:
                    text = (await http.get(metrics_url)).text
                    return metric_value(text, "parkstream_controller_in_flight") >= 5

                await wait_until(calling, timeout=60, interval=0.2)
                os.kill(broker.pid, signal.SIGSTOP)
                frozen = time.monotonic()
                waited: list[float] = []  # the gauge, as Prometheus would scrape it
                while worker.proc.poll() is None and time.monotonic() - frozen < 120:
                    try:
                        text = (await http.get(metrics_url, timeout=2)).text
                        waited.append(
                            metric_value(text, "parkstream_worker_seconds_without_progress")
                        )
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(1)
                took = time.monotonic() - frozen
                code = worker.proc.poll()
                os.kill(broker.pid, signal.SIGCONT)
        finally:
            for process in reversed(processes):
                process.stop()
    assert code in (EXIT_STALLED, 1), worker.log()[-3000:]  # the watchdog, or a write timeout
    assert took < 120
    # The gauge rose while it waited (until the worker gave up: at 30 s its produce
    # requests time out and it stops; the watchdog ends a stop that hangs too).
    assert max(waited, default=0) >= 20, (waited, took)
    if code == EXIT_STALLED:
        assert "worker stalled, exiting" in worker.log()
        assert "stacks of the stalled worker" in worker.log()


def stack_env_token(env: dict[str, str]) -> str:
    """The first vendor's token of the test environment."""
    return env["PARKSTREAM_VENDOR_TOKENS"].split(",")[0].split("=", 1)[1]
