"""What the dispatcher journals per command (issue 15's fast path, docs/delivery.md "The
journal"): an intent before a push or a delete, none before an idempotent update."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from faust.types import TP

from consumers import dispatch
from foundation.worker.ownership import Revoked
from tests.support.dispatcher import END, World


def journaled(world: World) -> list[str]:
    return [(record["value"] or {"state": "withdrawn"})["state"] for record in world.journal_writes]


async def test_a_push_and_a_delete_announce_their_call_with_an_intent():
    world = World()
    await world.command("CREATE")
    await world.command("DELETE")
    assert journaled(world) == ["intent", "done", "intent", "done"]
    assert world.calls == ["permits/push", "permits/delete"]


async def test_an_update_is_called_without_an_intent_and_journaled_done():
    world = World()
    await world.command("CREATE")
    await world.command("UPDATE", end_time=END + timedelta(hours=1))
    assert journaled(world) == ["intent", "done", "done"]
    assert world.calls == ["permits/push", "permits/update"]


async def test_an_update_redelivered_after_a_crash_before_its_done_is_sent_again():
    """Without an intent, an interrupted update looks new: it is sent again, with the same
    values, which the Controller applies as once."""
    world = World()
    await world.command("CREATE")
    await world.command("UPDATE", end_time=END + timedelta(hours=1))
    update_id = world.journal_writes[-1]["key"]
    world.dispatcher.journal.data.pop(update_id)  # the crash came before its done was kept
    world.events -= 1  # the same event again
    await world.command("UPDATE", end_time=END + timedelta(hours=1))
    assert world.calls == ["permits/push", "permits/update", "permits/update"]


async def test_a_call_waiting_for_a_slot_when_its_lease_ends_is_never_made():
    """A push whose intent is durable may wait for a call slot past the drain bound (with
    more keys in flight than slots, ``KEYS_PER_CALL_SLOT``). Its owner has lost the
    partition by then: no call."""
    world = World(controller_concurrency=1)
    ownership = world.dispatcher.worker.ownership
    ownership.drain_seconds = 0.1
    await world.dispatcher._calls.acquire()  # the one slot is busy
    pushing = asyncio.create_task(world.command("CREATE"))
    await asyncio.sleep(0.05)
    assert journaled(world) == ["intent"]  # announced, waiting for the slot
    await ownership.revoke()  # the drain bound passes: the lease is void
    world.dispatcher._calls.release()
    with pytest.raises(Revoked):
        await pushing
    assert world.calls == []
    assert journaled(world) == ["intent"]  # a void lease writes nothing: the next owner looks it up


async def test_an_announced_call_given_up_before_it_left_withdraws_its_intent():
    """In an outage the circuit is open: at a revocation an announced push gives up
    without a request leaving, and withdraws its intent, so the next owner calls it
    afresh instead of reconciling (which can leave a permit in doubt)."""
    world = World()
    breaker = world.dispatcher.breaker
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    pushing = asyncio.create_task(world.command("CREATE"))
    await asyncio.sleep(0.05)
    assert journaled(world) == ["intent"]
    await world.dispatcher.worker.ownership.revoke()
    with pytest.raises(Revoked):
        await pushing
    assert world.calls == [] and world.journal() == {}  # withdrawn: a tombstone

    breaker.record_success()  # the Controller is back; the next owner gets the push again
    world.lease = world.dispatcher.worker.ownership.lease(TP("commands", 0))
    world.events -= 1
    await world.command("CREATE")
    assert world.calls == ["permits/push"]
    assert journaled(world) == ["intent", "withdrawn", "intent", "done"]


async def test_a_push_whose_request_left_keeps_its_intent_when_given_up(monkeypatch):
    """The Controller may have applied a request whose answer was lost: a revocation during
    the backoff after it must leave the intent, so the next owner looks the push up."""
    monkeypatch.setattr(dispatch, "backoff_delay", lambda attempt, retry_after: 30.0)
    world = World()
    world.failures = [503]  # applied, then the answer lost
    pushing = asyncio.create_task(world.command("CREATE"))
    await asyncio.sleep(0.05)
    assert world.calls == ["permits/push"]  # backing off now
    await world.dispatcher.worker.ownership.revoke()
    with pytest.raises(Revoked):
        await pushing
    assert journaled(world) == ["intent"]  # kept: the next owner reconciles, never re-pushes blind
