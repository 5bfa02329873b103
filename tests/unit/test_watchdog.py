"""The stall watchdog (foundation.worker.watchdog): work without progress for the limit ends the worker."""

import asyncio

from foundation.worker.watchdog import EXIT_STALLED, StallClock, Watchdog, stacks
from tests.support.clock import ManualClock


def test_idle_time_is_never_a_stall():
    clock = ManualClock(1000.0)
    stall = StallClock(120, clock)
    clock.now += 1000
    assert stall.observe(has_work=False) == 0
    assert not stall.stalled(has_work=False)


def test_work_without_progress_for_the_limit_is_a_stall_and_progress_resets_it():
    clock = ManualClock(1000.0)
    stall = StallClock(120, clock)
    stall.observe(has_work=True)
    clock.now += 119
    assert not stall.stalled(has_work=True)
    stall.progressed()
    clock.now += 119
    assert not stall.stalled(has_work=True)
    clock.now += 1
    assert stall.stalled(has_work=True)


def test_a_stalled_worker_exits_with_code_70_and_says_what_waits():
    clock = ManualClock(1000.0)
    exits = []
    dog = Watchdog(60, exit=exits.append, clock=clock)
    dog.add_work("dispatch", lambda: 12)
    dog.add_work("lag", lambda: 0)
    dog.tick()
    clock.now += 61
    dog.tick()
    reason = dog.verdict()
    assert reason is not None and "dispatch=12" in reason and "lag" not in reason
    dog._die(reason)
    assert exits == [EXIT_STALLED]


def test_an_event_loop_that_stops_answering_is_a_stall_even_with_no_work_seen():
    clock = ManualClock(1000.0)
    dog = Watchdog(60, exit=lambda code: None, clock=clock)
    dog.tick()  # the loop's last heartbeat
    clock.now += 61
    assert "event loop" in (dog.verdict() or "")


def test_a_probe_that_fails_counts_as_no_work():
    dog = Watchdog(60, exit=lambda code: None)
    dog.add_work("broken", lambda: 1 // 0)
    assert dog.work() == {"broken": 0}


async def test_the_stacks_show_every_task():
    async def parked() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(parked(), name="parked-task")
    await asyncio.sleep(0)
    text = stacks(asyncio.get_running_loop())
    task.cancel()
    assert "parked-task" in text and "most recent call first" in text  # tasks and threads
