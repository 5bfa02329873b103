"""Crash tests: sessions through the gateway while workers are SIGKILLed, join and leave, and the
Controller fails, answers after applying, shows local time or is down for a minute.

Every session is created; a third are then updated and deleted, another third only
updated. At the end every session's fate is told from the Controller's own call journal,
its permits, the gateway's delivery status and the dead-letter topic, and must be one of:

    delivered / updated / deleted   pushed exactly once, then its updates and delete applied
                                    in order, nothing after the delete but a re-sent delete,
                                    and the gateway's status says so
    in_doubt                        pushed at most once, nothing of it applied after, the
                                    gateway's status says in_doubt and ``parkstream dlq list
                                    --reason in_doubt`` shows its push with its plate

Anything else (pushed twice, an update lost or out of order, a dead letter of any other
reason, a session stuck without a visible state) fails the test, naming the session and
what the Controller saw of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from consumers.deadletters import dead_letters, read_dead_letters, settled
from foundation.broker import free_port
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.e2e.conftest import Stack, metric_value, wait_until
from tests.e2e.test_dead_letters import parkstream

# The settle wait below allows 600 s; pytest-timeout's 300 s default must not cut it short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SESSIONS = int(os.environ.get("PARKSTREAM_CRASH_SESSIONS", "3000"))
VENDORS = 32
FINAL_STATES = {"deleted": "deleted", "updated": "delivered", "created": "delivered"}


@dataclass(frozen=True)
class Scenario:
    sessions: int
    workers: int = 1
    kills: int = 0
    # When the permits start, from now; they last two hours (+1 h when updated).
    start: timedelta = timedelta(minutes=-5)
    permit_numbers: bool = True
    timezone: str = "UTC"
    failure_rate: float = 0.2
    after_apply: bool = False  # the Controller applies, then its answer is lost
    outage_seconds: float = 0.0  # a full outage, during which a worker joins and one leaves
    storm_seconds: float = 0.0  # workers join and leave every few seconds for this long


def plan(index: int) -> str:
    """What happens to session ``index``: "deleted", "updated" or "created"."""
    return ("deleted", "updated", "created")[index % 3]


def plate(index: int) -> str:
    return f"CR{index:05d}"


def wire(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def create_body(index: int, start: datetime, permit_numbers: bool) -> dict[str, str]:
    body = {
        "Amount": f"{1 + index % 40}.{index % 100:02d}",
        "CurrencyID": "CAD",
        "LicencePlate": plate(index),
        "zone": ("Lot 1", "Lot 4", "Red Lot")[index % 3],
        "startTime": wire(start),
        "endTime": wire(start + timedelta(hours=2)),
    }
    if permit_numbers:
        body["permitNo"] = f"CRASH-{index}"
    return body


def updated_end(start: datetime) -> str:
    return wire(start + timedelta(hours=3))


async def vendor_traffic(stack: Stack, http, indexes, start, refs, scenario) -> None:
    api = f"{stack.gateway_url}/api/{CLIENT}/v1/permits"
    for index in indexes:
        refs[index] = await stack.push(http, create_body(index, start, scenario.permit_numbers))
        if plan(index) in ("updated", "deleted"):
            body = {
                "apiToken": VENDOR_TOKEN,
                "referenceID": refs[index],
                "endTime": updated_end(start),
            }
            answer = await http.post(f"{api}/update", json=body)
            assert answer.status_code == 200, answer.text
        if plan(index) == "deleted":
            body = {"apiToken": VENDOR_TOKEN, "referenceID": refs[index]}
            answer = await http.post(f"{api}/delete", json=body)
            assert answer.status_code == 200, answer.text


async def killer(stack: Stack, kills: int, rng: random.Random) -> int:
    """SIGKILL a random live worker ``kills`` times, restarting it on the same port.

    Each kill lands mid-work: once the victim is making Controller calls (a restarted
    worker first waits for the group to drop its dead predecessor), at a random moment.
    """
    for _ in range(kills):
        live = [w for w in stack.workers if w.proc is not None and w.proc.poll() is None]
        victim = rng.choice(live)
        await _calling(victim, timeout=60)
        await asyncio.sleep(rng.uniform(0.2, 4))
        victim.stop(signal.SIGKILL)
        port = int(victim.env["PARKSTREAM_WORKER_WEB_PORT"])
        await asyncio.to_thread(stack.start_worker, port)
    return kills


async def outage(stack: Stack, sandbox, seconds: float, journal: list) -> None:
    """The Controller goes away for ``seconds``; meanwhile a worker joins and another leaves.

    Its records survive (SQLite), its call journal does not: ``journal`` gets what it held.
    """
    live = [w for w in stack.workers if w.proc is not None and w.proc.poll() is None]
    await _calling(live[0], timeout=60)
    async with httpx.AsyncClient(timeout=30) as http:
        await stack.set_faults(http, failure_rate=1.0)  # from now on nothing is applied...
        journal.extend(await stack.sandbox_journal(http))  # ...so this is all it applied
    sandbox.stop()
    await asyncio.sleep(seconds / 3)
    await asyncio.to_thread(stack.start_worker, free_port())  # joins
    await asyncio.sleep(seconds / 3)
    code = await asyncio.to_thread(live[0].stop, signal.SIGTERM, 60)  # leaves, gracefully
    assert code == 0, live[0].log()[-3000:]
    await asyncio.sleep(seconds / 3)
    sandbox.start()  # with the faults of its environment again


async def storm(stack: Stack, seconds: float, rng: random.Random) -> int:
    """Workers join and leave (SIGTERM) every 3-6 s for ``seconds``: each change is a
    rebalance of every worker. The last worker started before (the gateway asks it about
    delivery status) stays. Returns how many changes there were."""
    keeper = stack.workers[-1]
    await _calling(keeper, timeout=60)
    loop = asyncio.get_running_loop()
    ends, changes, leaving, stops = loop.time() + seconds, 0, [], []
    while loop.time() < ends:
        await asyncio.sleep(rng.uniform(3, 6))
        # Only a worker that has joined leaves gracefully: one stopped while it starts, before
        # Faust installs its signal handlers, dies of the SIGTERM like a SIGKILL (the
        # kill tests cover that).
        others = [
            w
            for w in stack.workers
            if w is not keeper and w.proc.poll() is None and await _ready(w)
        ]
        if others and (len(others) >= 2 or rng.random() < 0.5):
            worker = rng.choice(others)
            worker.stopped = True  # leaving on purpose: not to be restarted
            leaving.append(worker)
            stops.append(asyncio.create_task(asyncio.to_thread(worker.stop, signal.SIGTERM, 60)))
        else:
            await asyncio.to_thread(stack.start_worker, free_port())
        changes += 1
    codes = await asyncio.gather(*stops)
    unclean = [(code, w.log()[-2000:]) for code, w in zip(codes, leaving, strict=True) if code]
    assert not unclean, unclean
    return changes


async def _ready(worker) -> bool:
    url = f"http://127.0.0.1:{worker.env['PARKSTREAM_WORKER_WEB_PORT']}/readyz"
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            return (await http.get(url)).status_code == 200
        except httpx.HTTPError:
            return False


async def _calling(worker, timeout: float) -> None:
    """Wait until ``worker`` has made a Controller call (or ``timeout``: the work may be done)."""
    url = f"http://127.0.0.1:{worker.env['PARKSTREAM_WORKER_WEB_PORT']}/metrics"

    async def calls() -> float:
        async with httpx.AsyncClient(timeout=5) as http:
            try:
                text = (await http.get(url)).text
            except httpx.HTTPError:  # still starting
                return 0.0
        return metric_value(text, "parkstream_controller_calls_total")

    with contextlib.suppress(TimeoutError):
        await wait_until(calls, timeout=timeout, interval=0.2)


async def test_sessions_survive_worker_kills_and_controller_failures_exactly_once(stack):
    await crash_scenario(stack, Scenario(sessions=SESSIONS, kills=5))


async def test_two_workers_share_the_work_through_a_kill_and_restart_exactly_once(stack):
    await crash_scenario(stack, Scenario(sessions=1666, workers=2, kills=1))


async def test_permits_that_already_ended_are_never_pushed_twice(stack):
    # validate/plate cannot show an ended permit: an interrupted push is in doubt, not re-sent.
    scenario = Scenario(
        sessions=300, workers=2, kills=2, start=timedelta(hours=-3), failure_rate=0.05
    )
    await crash_scenario(stack, scenario)


async def test_a_controller_in_local_time_losing_answers_after_applying_never_doubles(stack):
    scenario = Scenario(
        sessions=300,
        workers=2,
        kills=2,
        permit_numbers=False,
        timezone="America/Toronto",
        failure_rate=0.05,
        after_apply=True,
    )
    await crash_scenario(stack, scenario)


async def test_a_minute_long_outage_while_a_worker_joins_and_another_leaves(stack):
    await crash_scenario(stack, Scenario(sessions=300, workers=2, outage_seconds=60))


async def test_workers_joining_and_leaving_every_few_seconds_under_load(stack):
    """A rebalance storm (issue 15): nothing doubled, nothing lost, in order."""
    await crash_scenario(stack, Scenario(sessions=1500, workers=2, storm_seconds=45))


async def crash_scenario(stack: Stack, scenario: Scenario) -> None:
    sessions = scenario.sessions
    stack.env["PARKSTREAM_SANDBOX_JOURNAL_SIZE"] = str(sessions * 8)
    stack.env["PARKSTREAM_SANDBOX_FAULT_FAILURE_RATE"] = str(scenario.failure_rate)
    stack.env["PARKSTREAM_SANDBOX_FAULT_FAILURE_STATUS"] = "503"
    stack.env["PARKSTREAM_SANDBOX_FAULT_RETRY_AFTER_S"] = "0"
    stack.env["PARKSTREAM_SANDBOX_FAULT_AFTER_APPLY"] = str(scenario.after_apply).lower()
    stack.env["PARKSTREAM_SANDBOX_FAULT_ENDPOINTS"] = "permits/push,permits/update,permits/delete"
    stack.env["PARKSTREAM_SANDBOX_TIMEZONE"] = scenario.timezone
    stack.env["PARKSTREAM_CONTROLLER_TIMEZONE"] = scenario.timezone
    if scenario.outage_seconds:  # the Controller keeps its records through the outage
        stack.settings.data_dir.mkdir(parents=True, exist_ok=True)
        stack.env["PARKSTREAM_SANDBOX_DB"] = str(stack.settings.data_dir / "controller.sqlite")
    sandbox = stack.start_sandbox()
    for _ in range(scenario.workers):
        stack.start_worker(free_port())
    # The gateway asks the last worker (the one that never leaves) about delivery status.
    port = stack.workers[-1].env["PARKSTREAM_WORKER_WEB_PORT"]
    stack.env["PARKSTREAM_WORKER_URL"] = f"http://127.0.0.1:{port}"
    stack.start_gateway()
    rng = random.Random(20261123)
    start = datetime.now(UTC).replace(microsecond=0) + scenario.start
    refs: dict[int, str] = {}
    limits = httpx.Limits(max_connections=VENDORS + 8)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        # A worker that ends by itself (the stall watchdog's exit 70) comes back, as on
        # Kubernetes; how many did is reported below.
        supervisor = asyncio.create_task(stack.restart_exited_workers())
        chaos = [asyncio.create_task(killer(stack, scenario.kills, rng))]
        earlier_journal: list[dict[str, Any]] = []  # the Controller's, before it restarted
        if scenario.storm_seconds:
            chaos.append(asyncio.create_task(storm(stack, scenario.storm_seconds, rng)))
        if scenario.outage_seconds:
            chaos.append(
                asyncio.create_task(
                    outage(stack, sandbox, scenario.outage_seconds, earlier_journal)
                )
            )
        await asyncio.gather(
            *(
                vendor_traffic(stack, http, range(v, sessions, VENDORS), start, refs, scenario)
                for v in range(VENDORS)
            )
        )
        changes = await asyncio.gather(*chaos)

        async def workers_ready() -> bool:
            # After the last join or leave the group rebalances; until the workers have their
            # tables again the gateway answers status requests 503 (docs/gateway.md).
            live = [w for w in stack.workers if w.proc.poll() is None]
            ports = [w.env["PARKSTREAM_WORKER_WEB_PORT"] for w in live]
            answers = await asyncio.gather(
                *(http.get(f"http://127.0.0.1:{port}/readyz") for port in ports),
                return_exceptions=True,
            )
            return all(getattr(a, "status_code", None) == 200 for a in answers)

        async def settled_everywhere() -> bool:
            fates = await session_fates(
                stack, http, refs, start, sessions, earlier_journal, quick=True
            )
            return all(
                fate in FINAL_STATES.values() or fate == "in_doubt" for fate in fates.values()
            )

        with contextlib.suppress(TimeoutError):
            await wait_until(settled_everywhere, timeout=600, interval=3)
        with contextlib.suppress(TimeoutError):
            await wait_until(workers_ready, timeout=120, interval=1)
        await asyncio.sleep(3)  # a late duplicate, if any, would land now
        fates = await session_fates(stack, http, refs, start, sessions, earlier_journal)
    supervisor.cancel()
    restarted = await supervisor
    tally = Counter(fates.values())
    stalled = sum("worker stalled, exiting" in worker.log() for worker in stack.workers)
    refetched = sum(worker.log().count("fetching the partition again") for worker in stack.workers)
    print(
        f"crash test: {scenario}: {dict(tally)}; workers ended by the stall watchdog: "
        f"{stalled}, restarted: {restarted}; partitions fetched again: {refetched}; "
        f"chaos: {changes}"
    )
    bad = {
        index: fate
        for index, fate in fates.items()
        if fate not in (*FINAL_STATES.values(), "in_doubt")
    }
    assert not bad, (
        f"{len(bad)} sessions with no acceptable fate, e.g. {dict(list(bad.items())[:5])}"
    )


async def session_fates(
    stack: Stack,
    http,
    refs: dict[int, str],
    start,
    sessions: int,
    earlier_journal: list[dict[str, Any]],
    quick: bool = False,
) -> dict[int, str]:
    """Each session's fate, or what is wrong with it (a text naming the problem).

    ``quick`` (while waiting): the gateway is asked only about sessions the Controller does
    not show in their final state, and the dead letters are not read.
    """
    # Entries from before a Controller restart sort first (its sequence restarts).
    journal = [{**e, "seq": (0, e["seq"])} for e in earlier_journal] + [
        {**e, "seq": (1, e["seq"])} for e in await stack.sandbox_journal(http)
    ]
    permits = await stack.sandbox_permits(http)
    by_plate: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for permit in permits:
        by_plate[permit["plate"]].append(permit)
    plate_of_ref = {p["reference_id"]: p["plate"] for p in permits}
    applied: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for entry in journal:
        if entry["status"] != 200 or entry["endpoint"] not in (
            "permits/push",
            "permits/update",
            "permits/delete",
        ):
            continue
        body = entry["body"]
        if entry["endpoint"] == "permits/push":
            key = body.get("LicencePlate")
        else:
            key = plate_of_ref.get(body.get("referenceID"))
        applied[key].append((entry["seq"], entry["endpoint"]))
    calls = {i: [e for _, e in sorted(applied[plate(i)])] for i in range(sessions)}
    in_controller = {
        i: _controller_fate(i, calls[i], by_plate[plate(i)], start) for i in range(sessions)
    }
    asked = [
        i for i in range(sessions) if not quick or in_controller[i] not in FINAL_STATES.values()
    ]
    states: dict[int, str | None] = {}
    for chunk in range(0, len(asked), VENDORS):
        part = asked[chunk : chunk + VENDORS]
        answers = await asyncio.gather(*(_gateway_state(stack, http, refs[i]) for i in part))
        states.update(zip(part, answers, strict=True))
    if quick:
        return {
            i: in_controller[i]
            if i not in states
            else ("in_doubt" if states[i] == "in_doubt" else "pending")
            for i in range(sessions)
        }
    letters = read_dead_letters(stack.settings)
    done = settled(letters)
    other_letters = {
        e.key.decode()
        for e in dead_letters(letters)
        if e.record["reason"] != "in_doubt" and (e.partition, e.offset) not in done
    }
    pushes_in_doubt = {e.key.decode() for e in dead_letters(letters) if e.is_push_in_doubt}
    listed = parkstream(stack, "dlq", "list", "--reason", "in_doubt").stdout
    fates = {}
    for i in range(sessions):
        reference, status, fate = refs[i], states[i], in_controller[i]
        if reference in other_letters:
            fate = f"dead-lettered ({status}): {calls[i]}"
        elif status == "in_doubt":
            if calls[i][1:]:
                fate = f"in doubt, yet its later commands were applied: {calls[i]}"
            elif reference not in pushes_in_doubt or plate(i) not in listed:
                fate = "in doubt, but dlq list --reason in_doubt does not show its push"
            elif calls[i].count("permits/push") <= 1:
                fate = "in_doubt"
        elif fate in FINAL_STATES.values() and status != fate:
            fate = f"{fate} in the Controller, but the gateway says {status}"
        fates[i] = fate
    return fates


def _controller_fate(index: int, calls: list[str], permits: list[dict[str, Any]], start) -> str:
    """What the Controller shows of session ``index``: its final state, or the problem."""
    pushes = calls.count("permits/push")
    if pushes > 1:
        return f"pushed {pushes} times: {calls}"
    if pushes == 0 or calls[0] != "permits/push":
        return f"not pushed first: {calls}"
    if "permits/delete" in calls and set(calls[calls.index("permits/delete") :]) != {
        "permits/delete"
    }:
        return f"applied after its delete: {calls}"
    [permit] = permits
    wanted = plan(index)
    reached = {
        "deleted": bool(permit["deleted"]),
        "updated": not permit["deleted"] and permit["end_time"].startswith(updated_end(start)),
        "created": not permit["deleted"],
    }[wanted]
    if not reached or (wanted != "created" and "permits/update" not in calls):
        return f"not {wanted}: {calls}"
    return FINAL_STATES[wanted]


async def _gateway_state(stack: Stack, http, reference: str) -> str | None:
    answer = await http.get(
        f"{stack.gateway_url}/api/{CLIENT}/v1/permits/{reference}",
        headers={"Authorization": f"Bearer {VENDOR_TOKEN}"},
    )
    return answer.json().get("state") if answer.status_code == 200 else f"HTTP {answer.status_code}"
