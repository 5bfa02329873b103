import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.scheduler import KeyedScheduler


def test_items_of_one_key_run_in_order_and_keys_run_concurrently():
    async def scenario():
        log: list[tuple[str, int]] = []
        running = 0
        peak = 0

        async def work(item):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01 if item[1] % 2 else 0.002)
            log.append(item)
            running -= 1

        scheduler = KeyedScheduler(work, concurrency=4)
        for i in range(6):
            for key in "abc":
                await scheduler.submit(key, (key, i))
        await scheduler.drain()
        return log, peak

    log, peak = asyncio.run(scenario())
    for key in "abc":
        assert [i for k, i in log if k == key] == list(range(6))
    assert peak == 3  # three keys, never two items of one key at once


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 0.003)), max_size=60),
    st.integers(1, 5),
)
def test_random_durations_never_reorder_a_key_nor_exceed_the_concurrency(items, concurrency):
    async def scenario():
        done: list[tuple[str, int]] = []
        running = 0
        peak = 0

        async def work(item):
            nonlocal running, peak
            key, index, delay = item
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(delay)
            running -= 1
            done.append((key, index))

        scheduler = KeyedScheduler(work, concurrency=concurrency, max_outstanding=3)
        for index, (key, delay) in enumerate(items):
            await scheduler.submit(key, (key, index, delay))
        await scheduler.drain()
        return done, peak

    done, peak = asyncio.run(scenario())
    assert sorted(done, key=lambda d: d[1]) == [(k, i) for i, (k, _) in enumerate(items)]
    for key in set(k for k, _ in items):
        indexes = [i for k, i in done if k == key]
        assert indexes == sorted(indexes)
    assert peak <= concurrency


def test_submit_waits_while_the_scheduler_is_full():
    async def scenario():
        release = asyncio.Event()

        async def work(item):
            await release.wait()

        scheduler = KeyedScheduler(work, concurrency=1, max_outstanding=2)
        await scheduler.submit("a", 1)
        await scheduler.submit("b", 2)
        third = asyncio.create_task(scheduler.submit("c", 3))
        await asyncio.sleep(0.05)
        blocked = not third.done()
        release.set()
        await third
        await scheduler.drain()
        return blocked

    assert asyncio.run(scenario())


def test_a_failing_item_stops_the_scheduler_instead_of_being_skipped():
    told: list[BaseException] = []

    async def scenario():
        async def work(item):
            if item == "bad":
                raise RuntimeError("boom")

        scheduler = KeyedScheduler(work, concurrency=2, on_failure=told.append)
        await scheduler.submit("k", "bad")
        await asyncio.sleep(0.01)
        assert [str(e) for e in told] == ["boom"]  # told at once, not at the next submit
        await scheduler.submit("k", "next")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(scenario())


def test_cancel_abandons_everything_queued():
    async def scenario():
        started = []

        async def work(item):
            started.append(item)
            await asyncio.sleep(10)

        scheduler = KeyedScheduler(work, concurrency=1)
        for i in range(3):
            await scheduler.submit("k", i)
        await asyncio.sleep(0.01)
        await scheduler.cancel()
        await scheduler.drain()
        return started

    assert asyncio.run(scenario()) == [0]
