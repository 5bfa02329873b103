"""Consumer lag per partition: high watermark minus the committed offset."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from faust.types import TP

from foundation.settings import TOPICS, Settings
from foundation.worker.lag import LagReport, Refetch, partition_lag, short_names
from tests.support.clock import ManualClock


@pytest.mark.parametrize(
    ("highwater", "committed", "earliest", "lag"),
    [
        (120, 100, 0, 20),  # 20 records after the committed offset
        (100, 100, 0, 0),  # caught up
        (50, None, 0, 50),  # nothing committed yet: everything from the earliest record
        (50, None, 30, 20),  # the log was truncated up to offset 30
        (10, 12, 0, 0),  # a commit seen before the refreshed high watermark: never negative
        (None, 5, 0, None),  # the high watermark is unknown: no sample
    ],
)
def test_lag_is_what_waits_after_the_committed_offset(highwater, committed, earliest, lag):
    assert partition_lag(highwater, committed, earliest) == lag


def test_lag_is_labelled_with_short_topic_names_and_no_changelog():
    settings = Settings()
    SHORT_NAMES = short_names(settings)
    assert set(SHORT_NAMES.values()) == set(TOPICS)
    assert SHORT_NAMES[settings.topic("results")] == "results"
    assert not any("changelog" in name for name in SHORT_NAMES)


def test_a_partition_is_refetched_once_records_wait_unhandled_for_the_limit():
    clock = ManualClock()
    refetch = Refetch(15, clock)
    assert not refetch.stuck("tp", waiting=9, committed=0, busy=False)  # first seen
    clock.now = 14
    assert not refetch.stuck("tp", waiting=9, committed=0, busy=False)
    clock.now = 15
    assert refetch.stuck("tp", waiting=9, committed=0, busy=False)
    clock.now = 20  # once per limit, not at every refresh
    assert not refetch.stuck("tp", waiting=9, committed=0, busy=False)
    clock.now = 30
    assert refetch.stuck("tp", waiting=9, committed=0, busy=False)


@pytest.mark.parametrize(
    ("waiting", "committed", "busy"),
    [
        (0, 0, False),  # nothing waits: idle, not stuck
        (9, 0, True),  # records in hand (a Controller outage) or in the stream's queue
        (9, 5, False),  # the committed offset moved: progress
    ],
)
def test_a_partition_that_is_idle_busy_or_moving_is_never_refetched(waiting, committed, busy):
    clock = ManualClock()
    refetch = Refetch(15, clock)
    refetch.stuck("tp", waiting=9, committed=0, busy=False)
    clock.now = 15
    assert not refetch.stuck("tp", waiting=waiting, committed=committed, busy=busy)
    clock.now = 29  # and the wait starts again from there
    assert not refetch.stuck("tp", waiting=9, committed=committed, busy=False)


def test_a_partition_no_longer_assigned_is_forgotten():
    clock = ManualClock()
    refetch = Refetch(15, clock)
    refetch.stuck("tp", waiting=9, committed=0, busy=False)
    refetch.retain([])
    clock.now = 15
    assert not refetch.stuck("tp", waiting=9, committed=0, busy=False)  # seen anew


class BrokerAway:
    """A Faust consumer whose offset requests fail, as while the broker is away."""

    def assignment(self):
        return {TP(Settings().topic("commands"), 0)}

    async def highwaters(self, *tps):
        raise ConnectionError("broker away")


async def test_a_lag_that_cannot_be_read_three_times_in_a_row_is_a_warning(caplog):
    # While the refresh fails the stall watchdog sees the last count: the operator must see why.
    app = SimpleNamespace(consumer=BrokerAway())
    worker = SimpleNamespace(app=app, settings=Settings(), committed_offsets=dict)
    report = LagReport(worker)
    with caplog.at_level(logging.DEBUG, logger="foundation.worker.lag"):
        for _ in range(3):
            await report.refresh()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "consumer lag not refreshed failures=3" in warnings[0].getMessage()
    assert "ConnectionError: broker away" in warnings[0].getMessage()
