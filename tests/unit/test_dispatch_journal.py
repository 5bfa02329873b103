"""What the dispatcher journals per command (issue 15's fast path, docs/delivery.md "The
journal"): an intent before a push or a delete, none before an idempotent update."""

from __future__ import annotations

from datetime import timedelta

from tests.support.dispatcher import END, World


def journaled(world: World) -> list[str]:
    return [record["value"]["state"] for record in world.journal_writes]


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
