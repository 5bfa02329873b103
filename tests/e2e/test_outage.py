"""The Controller is down for 60 s under load: nothing is dead-lettered, everything lands once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from consumers.deadletters import read_dead_letters
from tests.e2e.conftest import metric_value, wait_until
from tests.support.examples import PERMIT_PUSH_EXAMPLE

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 60


def permit(number: int) -> dict[str, str]:
    rng = random.Random(number)
    return {
        **PERMIT_PUSH_EXAMPLE,
        "LicencePlate": f"OUT{number:04d}",
        "permitNo": f"OUTAGE-{number}",
        "zone": rng.choice(["Lot 1", "Lot 4", "Red Lot"]),
    }


class Load:
    """Vendors pushing permits at a steady rate while the circuit's states are watched."""

    def __init__(self, stack, http: httpx.AsyncClient, make=None) -> None:
        self.stack, self.http = stack, http
        self.make = make or permit
        self.sent = 0
        self.circuit_states: set[float] = set()
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def push(self, seconds: float, rate: float = 10) -> None:
        for _ in range(int(seconds * rate)):
            await self.stack.push(self.http, self.make(self.sent))
            self.sent += 1
            await asyncio.sleep(1 / rate)

    def watch_circuit(self) -> None:
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self._stop.is_set():
            text = await self.stack.worker_metrics(self.http)
            self.circuit_states.add(metric_value(text, "parkstream_circuit_state"))
            await asyncio.sleep(0.5)

    async def all_landed(self, timeout: float = 180) -> None:
        async def landed() -> bool:
            return len(await self.stack.sandbox_permits(self.http)) >= self.sent

        await wait_until(landed, timeout=timeout, interval=1)
        await asyncio.sleep(2)  # let a double push, if there were one, arrive
        self._stop.set()
        if self._watcher is not None:
            await self._watcher


async def test_a_60s_controller_outage_under_load_loses_and_doubles_nothing(stack, tmp_path):
    stack.env["PARKSTREAM_SANDBOX_DB"] = str(tmp_path / "controller.sqlite")
    sandbox = stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:
        load = Load(stack, http)
        load.watch_circuit()
        await load.push(5)
        sandbox.stop()  # the Controller goes away; vendors keep sending
        await load.push(OUTAGE_SECONDS)
        assert read_dead_letters(stack.settings) == []
        sandbox.start()
        await load.push(5)
        await load.all_landed()
        await wait_until(lambda: stack.worker_metrics(http), timeout=5)  # worker still answering
        permits = await stack.sandbox_permits(http)
        numbers = Counter(p["permit_no"] for p in permits)
        assert set(numbers) == {f"OUTAGE-{n}" for n in range(load.sent)}
        assert max(numbers.values()) == 1
        assert read_dead_letters(stack.settings) == []
        assert 2 in load.circuit_states  # it opened during the outage
        final = metric_value(await stack.worker_metrics(http), "parkstream_circuit_state")
        assert final == 0  # and closed after it


async def test_maintenance_pages_under_load_open_the_circuit_and_double_nothing(stack):
    # For 20 s the Controller (or a proxy in front of it) answers every call with a 200 HTML
    # maintenance page, the second half after applying the call. Lost answers: no dead
    # letter but pushes in doubt, the circuit opens and closes, every permit lands once.
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    page = {"failure_rate": 1.0, "failure_body": "html", "failure_status": 200}
    async with httpx.AsyncClient(timeout=10) as http:
        load = Load(stack, http, active_permit)
        load.watch_circuit()
        await load.push(3)
        await stack.set_faults(http, **page)
        await load.push(10)
        await stack.set_faults(http, **page, after_apply=True)
        await load.push(10)
        await http.delete(f"{stack.sandbox_url}/_sandbox/faults")
        await load.push(3)
        await load.all_landed()
        permits = await stack.sandbox_permits(http)
        final = metric_value(await stack.worker_metrics(http), "parkstream_circuit_state")
    numbers = Counter(p["permit_no"] for p in permits)
    assert set(numbers) == {f"OUTAGE-{n}" for n in range(load.sent)}
    assert max(numbers.values()) == 1  # nothing doubled
    letters = read_dead_letters(stack.settings)
    # A push applied and answered with the page is looked up and found: in doubt, never
    # pushed again. Nothing else is dead-lettered.
    assert {e.record["reason"] for e in letters} <= {"in_doubt"}, letters
    assert all(e.is_push_in_doubt for e in letters)
    assert 2 in load.circuit_states  # it opened during the maintenance
    assert final == 0  # and closed after it


def active_permit(number: int) -> dict[str, str]:
    """A permit active now, so an interrupted push can be looked up."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return {
        **permit(number),
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
