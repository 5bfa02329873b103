"""Leases and revocation (foundation.worker.ownership): an owner that lost a partition can never call the
Controller or write for it, and a revocation waits, bounded, for the work under way."""

import asyncio
import time

import pytest
from faust.types import TP as FaustTP

from foundation.worker.ownership import LeaseState, Ownership, Revoked

TP = FaustTP("commands", 1)


async def test_a_lease_is_valid_until_its_partition_is_revoked():
    ownership = Ownership(drain_seconds=1)
    lease = ownership.lease(TP)
    lease.check_call()
    lease.check_write()
    await ownership.revoke([TP])
    assert lease.state is LeaseState.VOID
    with pytest.raises(Revoked):
        lease.check_call()
    with pytest.raises(Revoked):
        lease.check_write()
    ownership.lease(TP).check_call()  # a record delivered after the rebalance: a new lease


async def test_while_draining_no_call_may_start_but_an_outcome_may_be_written():
    ownership = Ownership(drain_seconds=5)
    lease = ownership.lease(TP)
    seen = []

    async def command_whose_call_ended() -> None:
        with lease.working():
            await asyncio.sleep(0.05)
            seen.append(lease.state)
            with pytest.raises(Revoked):
                lease.check_call()  # no new call, no retry
            lease.check_write()  # its outcome may still be recorded

    working = asyncio.create_task(command_whose_call_ended())
    await asyncio.sleep(0)
    assert await ownership.revoke() == 0  # waited for it
    await working
    assert seen == [LeaseState.DRAINING]
    assert lease.state is LeaseState.VOID


async def test_a_record_delivered_during_a_revocation_never_starts():
    ownership = Ownership(drain_seconds=5)
    first = ownership.lease(TP)
    release = asyncio.Event()

    async def busy() -> None:
        with first.working():
            await release.wait()

    task = asyncio.create_task(busy())
    await asyncio.sleep(0)
    revoking = asyncio.create_task(ownership.revoke())
    await asyncio.sleep(0)
    late = ownership.lease(TP)
    assert late.state is LeaseState.DRAINING
    with pytest.raises(Revoked):
        late.check_call()
    release.set()
    await revoking
    await task


async def test_the_drain_is_bounded_and_what_outlasts_it_can_write_nothing():
    ownership = Ownership(drain_seconds=0.1)
    lease = ownership.lease(TP)
    stuck = asyncio.Event()

    async def never_ends() -> None:
        with lease.working():
            await stuck.wait()

    task = asyncio.create_task(never_ends())
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await ownership.revoke() == 1
    assert time.monotonic() - started < 1
    with pytest.raises(Revoked):
        lease.check_write()
    task.cancel()


async def test_a_backoff_sleep_ends_at_once_when_the_partition_is_revoked():
    ownership = Ownership(drain_seconds=5)
    lease = ownership.lease(TP)
    started = time.monotonic()
    sleeping = asyncio.create_task(lease.sleep(30))
    await asyncio.sleep(0.01)
    await ownership.revoke()
    with pytest.raises(Revoked):
        await sleeping
    assert time.monotonic() - started < 1


async def test_a_sleep_under_a_valid_lease_sleeps():
    lease = Ownership(drain_seconds=5).lease(TP)
    started = time.monotonic()
    await lease.sleep(0.05)
    assert time.monotonic() - started >= 0.04
