"""An agent's ordered pipeline (foundation.worker.pipeline): offsets acknowledged only once a record's
outcome is durable, in order, and never for a partition this worker lost."""

import asyncio
from types import SimpleNamespace

from faust.types import TP

from foundation.worker.ownership import Ownership
from foundation.worker.pipeline import OrderedPipeline


class Event:
    def __init__(self, partition: int, offset: int) -> None:
        self.message = SimpleNamespace(tp=TP("t", partition), partition=partition, offset=offset)
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


async def no_seek(tp, offset):
    raise AssertionError("nothing was skipped")


class Stream:
    def __init__(self, events) -> None:
        self._events = events

    def noack(self):
        return self

    async def events(self):
        for event in self._events:
            yield event
            await asyncio.sleep(0)
        await asyncio.Event().wait()  # a topic never ends: the agent waits for more


async def test_records_are_acknowledged_in_order_once_their_tails_finished():
    events = [Event(0, offset) for offset in range(3)]
    gates = {offset: asyncio.Event() for offset in range(3)}

    async def tail(offset):
        await gates[offset].wait()

    async def head(event, lease):
        return tail(event.message.offset)

    line = OrderedPipeline("t", Ownership(1), lambda: None, lambda exc: None, no_seek)
    running = asyncio.create_task(line.run(Stream(events), head))
    await asyncio.sleep(0.01)
    gates[2].set()
    await asyncio.sleep(0.01)
    assert [e.acked for e in events] == [False, False, False]  # 2 waits for 0 and 1
    gates[0].set()
    await asyncio.sleep(0.01)
    assert [e.acked for e in events] == [True, False, False]
    gates[1].set()
    await asyncio.sleep(0.01)
    assert all(e.acked for e in events)
    running.cancel()


async def test_a_record_without_a_tail_is_acknowledged_behind_the_ones_before_it():
    events = [Event(0, 0), Event(0, 1)]
    gate = asyncio.Event()

    async def head(event, lease):
        if event.message.offset == 0:
            return gate.wait()
        return None  # a duplicate: nothing to write

    line = OrderedPipeline("t", Ownership(1), lambda: None, lambda exc: None, no_seek)
    running = asyncio.create_task(line.run(Stream(events), head))
    await asyncio.sleep(0.01)
    assert not events[1].acked
    gate.set()
    await asyncio.sleep(0.01)
    assert events[0].acked and events[1].acked
    running.cancel()


async def test_what_has_not_finished_at_a_revocation_is_never_acknowledged():
    events = [Event(0, 0)]
    ownership = Ownership(drain_seconds=0.05)
    gate = asyncio.Event()

    async def head(event, lease):
        async def tail():
            await gate.wait()
            lease.check_write()

        return tail()

    line = OrderedPipeline("t", ownership, lambda: None, lambda exc: None, no_seek)
    running = asyncio.create_task(line.run(Stream(events), head))
    await asyncio.sleep(0.01)
    assert await ownership.revoke() == 1  # its tail outlasted the drain
    assert line.forget() == 1
    gate.set()
    await asyncio.sleep(0.01)
    assert not events[0].acked  # redelivered to the next owner instead
    running.cancel()


async def test_a_failing_tail_stops_the_worker_and_is_not_acknowledged():
    events = [Event(0, 0)]
    failures = []

    async def head(event, lease):
        async def tail():
            raise TimeoutError("not acknowledged")

        return tail()

    line = OrderedPipeline("t", Ownership(1), lambda: None, failures.append, no_seek)
    running = asyncio.create_task(line.run(Stream(events), head))
    await asyncio.sleep(0.01)
    running.cancel()
    assert [type(f) for f in failures] == [TimeoutError]
    assert not events[0].acked


async def test_a_record_after_a_forgotten_one_makes_the_partition_sought_back_once():
    ownership = Ownership(drain_seconds=0.01)
    sought = []

    async def seek(tp, offset):
        sought.append((tp.partition, offset))

    gate = asyncio.Event()

    async def head(event, lease):
        return gate.wait() if event.message.offset == 40 else None

    line = OrderedPipeline("t", ownership, lambda: None, lambda exc: None, seek)
    first = asyncio.create_task(line.run(Stream([Event(2, 40)]), head))
    await asyncio.sleep(0.01)
    await ownership.revoke()
    line.forget()
    first.cancel()
    # After the rebalance Faust hands over 44 and 45 first: both dropped, one seek back to 40.
    later = [Event(2, 44), Event(2, 45), Event(2, 40)]
    gate.set()
    again = asyncio.create_task(line.run(Stream(later), head))
    await asyncio.sleep(0.05)
    assert sought == [(2, 40)]
    assert [e.acked for e in later] == [False, False, True]
    again.cancel()
