"""Every table of the worker keeps only what its retention says, with a clock the test moves
(issue 14): the journal, the sessions and the dedupe entries; stats prune their own
(tests/unit/test_stats.py). Nothing in doubt is ever dropped, and a late event after the
retention gets what docs/delivery.md ("Retention") says."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from consumers.sessions import session_key
from foundation.settings import Settings
from foundation.worker.app import WorkerApp
from schemas.status import SessionState
from streams.planning import Planning
from tests.support.dispatcher import END, SESSION, START, World
from tests.support.tables import changelog_table


async def test_a_settled_session_is_kept_until_its_permit_ended_the_retention_ago():
    world = World(session_retention_days=35, journal_retention_days=30)
    await world.command("CREATE")
    assert world.session()["state"] == SessionState.DELIVERED
    assert world.session()["end"] == END.isoformat()

    world.now = END + timedelta(days=35) - timedelta(minutes=1)
    await world.prune()
    assert world.session() is not None  # the permit ended 35 days ago less a minute

    world.now = END + timedelta(days=36)  # the next day's prune
    await world.prune()
    assert world.session() is None
    assert world.journal() == {}  # its done entry was 35 days old: past the journal's 30


async def test_an_update_counts_the_retention_from_the_permits_new_end():
    world = World(session_retention_days=35)
    await world.command("CREATE")
    later = END + timedelta(days=60)
    world.now = START + timedelta(hours=1)
    await world.command("UPDATE", end_time=later)
    world.now = END + timedelta(days=40)
    await world.prune()
    assert world.session()["end"] == later.isoformat()  # kept: the permit runs 60 days more


async def test_a_session_in_doubt_is_never_dropped():
    world = World(session_retention_days=1, journal_retention_days=1)
    await world.command("CREATE")
    state = {**world.session(), "state": SessionState.IN_DOUBT}
    world.dispatcher.sessions.data.apply_acknowledged(
        TP("sessions-changelog", 0), 99, session_key(SESSION), state
    )
    world.now = END + timedelta(days=3650)
    await world.prune()
    assert world.session()["state"] == SessionState.IN_DOUBT


async def test_an_intent_is_never_dropped():
    world = World(journal_retention_days=1)
    world.dispatcher.journal.data.apply_acknowledged(
        TP("journal-changelog", 0), 0, "c-1", {"state": "intent", "at": START.isoformat()}
    )
    world.now = START + timedelta(days=3650)
    await world.prune()
    assert "c-1" in world.journal()


async def test_a_late_update_for_a_dropped_session_is_held_as_reference_unknown():
    world = World(session_retention_days=35)
    await world.command("CREATE")
    world.now = END + timedelta(days=36)
    await world.prune()
    await world.command("UPDATE", end_time=END + timedelta(hours=1))
    assert world.calls == ["permits/push"]  # the update never reached the Controller
    [letter] = world.dead_letters
    assert (letter["reason"], letter["error_code"]) == ("controller_reference_unknown", 9009)


async def test_a_repeated_push_of_a_delivered_session_is_not_sent_within_the_retention():
    world = World(session_retention_days=35)
    await world.command("CREATE")
    world.now = END + timedelta(days=20)  # long past any dedupe window
    await world.command("CREATE")  # a vendor's late retry: a new event, a new command id
    assert world.calls == ["permits/push"]


async def test_a_vendor_retry_of_a_push_older_than_the_retention_is_pushed_again():
    """The documented limit: once a session's state is dropped, nothing remembers it."""
    world = World(session_retention_days=35, journal_retention_days=30)
    await world.command("CREATE")
    world.now = END + timedelta(days=36)
    await world.prune()
    await world.command("CREATE")
    assert world.calls == ["permits/push", "permits/push"]


async def test_a_session_with_a_command_under_way_waits_for_the_next_days_prune():
    world = World(session_retention_days=1)
    await world.command("CREATE")
    world.now = END + timedelta(days=2)
    await world.dispatcher._prune(world.lease, busy=lambda key: key == session_key(SESSION))
    assert world.session() is not None
    await world.prune()  # the same day: not again
    assert world.session() is not None
    world.now += timedelta(days=1)
    await world.prune()
    assert world.session() is None


# --- dedupe ---------------------------------------------------------------------------------


def enrich(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return dict(event), []


def plan(event: dict[str, Any]) -> dict[str, Any]:
    return {"command_id": f"{event['event_id']}:x"}


EVENT = {"event_id": "ev-1", "vendor": "hotspot", "plate": "PL8RDR", "zone": "Lot 4"}


@pytest.fixture
def dedupe() -> SimpleNamespace:
    now = [START]
    worker = WorkerApp(Settings(table_store="memory", dedupe_window=600, session_retention_days=35))
    worker.clock = lambda: now[0]
    planning = Planning(worker)
    planning.seen = changelog_table(auto_ack=True, name="dedupe")
    return SimpleNamespace(
        planning=planning, now=now, lease=worker.ownership.lease(TP("sessions", 0))
    )


async def remember(dedupe: SimpleNamespace, topic: str, key: bytes, event: dict[str, Any]) -> Any:
    planned = dedupe.planning.plan_one(topic, key, event, enrich, plan)
    if planned is not None:
        acked = _acked()
        await dedupe.planning._record_seen(planned, acked, dedupe.lease)
    return planned


def _acked() -> Any:
    future = asyncio.get_running_loop().create_future()
    future.set_result("metadata")
    return future


async def test_dedupe_entries_go_after_the_window_and_a_created_session_after_the_retention(
    dedupe,
):
    planning, now = dedupe.planning, dedupe.now
    await remember(dedupe, "vehicles", b"PL8RDR|ON", {**EVENT})
    await remember(dedupe, "sessions", SESSION.encode(), {**EVENT, "action": "CREATE"})

    now[0] = START + timedelta(seconds=599)
    await planning.prune("vehicles", dedupe.lease)
    await planning.prune("sessions", dedupe.lease)
    assert set(dict(planning.seen.data)) == {"vehicles|PL8RDR|ON", f"sessions|{SESSION}"}

    now[0] = START + timedelta(days=1)  # the next day's prune: past the window
    await planning.prune("vehicles", dedupe.lease)
    await planning.prune("sessions", dedupe.lease)
    assert set(dict(planning.seen.data)) == {f"sessions|{SESSION}"}  # its create mark stays
    retry = {**EVENT, "event_id": "ev-2", "action": "CREATE"}
    assert planning.plan_one("sessions", SESSION.encode(), retry, enrich, plan) is None

    now[0] = START + timedelta(days=36)
    await planning.prune("sessions", dedupe.lease)
    assert dict(planning.seen.data) == {}
    # After the retention a late create is planned again; the dispatcher still sends no
    # second push while the session's own state is kept (its permit's end + the retention).
    assert planning.plan_one("sessions", SESSION.encode(), retry, enrich, plan) is not None


async def test_a_topics_agent_prunes_only_its_own_entries_and_none_being_decided(dedupe):
    planning, now = dedupe.planning, dedupe.now
    await remember(dedupe, "vehicles", b"PL8RDR|ON", {**EVENT})
    await remember(dedupe, "users", b"u-1", {**EVENT})
    planning._seen_pending["users|u-1"] = {"at": START.isoformat()}  # decided, not durable yet
    now[0] = START + timedelta(days=1)
    await planning.prune("sessions", dedupe.lease)
    assert set(dict(planning.seen.data)) == {"vehicles|PL8RDR|ON", "users|u-1"}
    await planning.prune("users", dedupe.lease)
    assert set(dict(planning.seen.data)) == {"vehicles|PL8RDR|ON", "users|u-1"}
