"""The planner records nothing before its command is durable (issue 11, items 2 and 8), and the
stats fold writes no row before Kafka acknowledged it."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from faust.types import TP

from foundation.settings import Settings
from foundation.worker.app import WorkerApp
from foundation.worker.ownership import Ownership
from streams import planning as worker_app
from streams import stats
from streams.planning import Planning
from tests.support.tables import changelog_table

EVENT = {
    "event_id": "ev-1",
    "session_id": "ps-1",
    "vendor": "hotspot",
    "action": "CREATE",
    "plate": "PL8RDR",
    "zone": "Lot 4",
}


def enrich(event):
    return dict(event), []


def command(event):
    return {"command_id": f"{event['event_id']}:permits/push"}


@pytest.fixture
def planning() -> Planning:
    """The planning agents' state of a worker built from explicit settings."""
    return Planning(WorkerApp(Settings()))


def test_planning_an_event_writes_no_dedupe_entry_before_its_command_is_acknowledged(planning):
    seen = {}
    planning.seen = seen
    planning._seen_pending = {}
    planned = planning.plan_one("sessions", b"ps-1", EVENT, enrich, command)
    assert planned is not None and planned.dedupe_state["created"]
    assert seen == {}  # a crash now redelivers the event, which is planned again


def test_an_event_whose_planning_failed_is_planned_when_replayed(planning):
    planning.seen = {}
    planning._seen_pending = {}

    def broken(event):
        raise KeyError("a bug")

    with pytest.raises(KeyError):  # the head dead-letters it as planning_failed
        planning.plan_one("sessions", b"ps-1", EVENT, enrich, broken)
    assert planning.plan_one("sessions", b"ps-1", EVENT, enrich, command) is not None


def test_a_second_create_is_a_repeat_while_the_first_ones_command_is_still_unacknowledged(
    planning,
):
    planning.seen = {}
    pending = {}
    planning._seen_pending = pending
    first = planning.plan_one("sessions", b"ps-1", EVENT, enrich, command)
    pending[first.dedupe_key] = first.dedupe_state  # what the head does before sending
    retry = {**EVENT, "event_id": "ev-2"}  # a vendor retry of the same push
    assert planning.plan_one("sessions", b"ps-1", retry, enrich, command) is None


async def test_the_dedupe_entry_is_sent_only_after_the_command_is_acknowledged(planning):
    seen = changelog_table(auto_ack=True)
    planning.seen = seen
    planning._seen_pending = {}
    planned = worker_app.Planned({"command_id": "c"}, "sessions|ps-1", {"created": True})
    lease = Ownership(1).lease(TP("sessions", 0))
    command_acked = asyncio.get_running_loop().create_future()
    tail = asyncio.create_task(planning._record_seen(planned, command_acked, lease))
    await asyncio.sleep(0.01)
    assert seen.changelog_topic.sent == []  # the command is not durable yet: nothing says "seen"
    command_acked.set_result("metadata")
    await tail
    assert [record["key"] for record in seen.changelog_topic.sent] == ["sessions|ps-1"]
    assert dict(seen.data) == {"sessions|ps-1": {"created": True}}


def test_folding_a_result_writes_no_row_before_kafka_acknowledged_it():
    table = {}
    now = datetime.now(UTC)
    result = {
        "command_id": "c:permits/push",
        "event_id": "e",
        "session_id": "ps-1",
        "endpoint": "permits/push",
        "vendor": "hotspot",
        "outcome": "APPLIED",
        "controller_reference_id": "r",
        "error_code": None,
        "error_message": None,
        "http_status": 200,
        "attempts": 1,
        "zone": "Lot 4",
        "amount": None,
        "currency": None,
        "start_time": now,
        "end_time": now + timedelta(hours=1),
        "completed_at": now,
    }
    folded = stats.Stats(table, stats.MetricLabels()).fold_event(result, 0, 0, "ps-1", now=now)
    assert table == {}
    assert [key for key, _ in folded.writes][-1] == "session:ps-1"  # the session row last
