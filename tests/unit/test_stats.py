"""Per-zone statistics folded from Controller results: what is counted, once, exactly."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from foundation.settings import Settings
from parkstream.worker import build_worker
from streams import stats
from streams.stats import StatsQuery, answer, parse_query, partial_rows

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
_ids = itertools.count()


def result(
    endpoint: str = "permits/push",
    *,
    session_id: str | None = "s1",
    outcome: str = "APPLIED",
    command_id: str | None = None,
    zone: str | None = None,
    vendor: str = "hotspot",
    amount: str | None = None,
    currency: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    error_code: int | None = None,
    completed: datetime = NOW,
) -> dict[str, Any]:
    """A decoded ``ControllerResult`` as the dispatcher writes it (consumers/apply.py)."""
    if endpoint == "permits/push":
        zone = "Lot 4" if zone is None else zone
        amount = "14.50" if amount is None else amount
        currency = currency or "CAD"
        start = start or NOW - timedelta(hours=1)
        end = end or NOW + timedelta(hours=1)
    return {
        "command_id": command_id or f"cmd-{next(_ids)}:{endpoint}",
        "event_id": "e",
        "session_id": session_id,
        "endpoint": endpoint,
        "vendor": vendor,
        "outcome": outcome,
        "controller_reference_id": None,
        "error_code": error_code,
        "error_message": None,
        "http_status": 200,
        "attempts": 1,
        "zone": zone,
        "amount": None if amount is None else Decimal(amount),
        "currency": currency,
        "start_time": start,
        "end_time": end,
        "completed_at": completed,
    }


class Worker:
    """The stats agent's fold over a plain dict standing in for the changelogged table."""

    def __init__(self, partitions: int = 3) -> None:
        self.table: dict[str, Any] = {}
        self.partitions = partitions
        self.offsets = dict.fromkeys(range(partitions), 0)
        self.zone_stats = stats.Stats(self.table, stats.MetricLabels())

    def fold(
        self, record: dict[str, Any], partition: int = 0, offset: int | None = None, now=NOW
    ) -> int:
        if offset is None:
            offset = self.offsets[partition]
            self.offsets[partition] += 1
        # What the agent does with the writes once Kafka acknowledged them.
        for key in self.zone_stats.stale_keys(partition, now):
            del self.table[key]
        folded = self.zone_stats.fold_event(
            record, partition, offset, record["session_id"] or "", now=now
        )
        if folded is not None:
            self.table.update(folded.writes)
            if folded.change is not None:
                self.zone_stats.labels.count_in_metrics(folded.change)
        return offset

    def stats(self, query: StatsQuery | None = None, now: datetime = NOW) -> dict[str, Any]:
        query = query or StatsQuery()
        everything = set(range(self.partitions))
        rows = partial_rows(self.table.items(), everything, query, query.days(now.date()), now)
        return answer(
            [{"partitions": sorted(everything), "rows": rows}], self.partitions, query, now
        )

    def zone(self, name: str | None = "Lot 4", **kw: Any) -> dict[str, Any]:
        [found] = [z for z in self.stats(**kw)["zones"] if z["zone"] == name]
        return found


@pytest.fixture
def worker() -> Worker:
    return Worker()


# --- what is counted -------------------------------------------------------------------------


def test_an_applied_push_is_created_live_active_and_its_amount_is_revenue(worker):
    worker.fold(result())
    assert worker.zone() == {
        "zone": "Lot 4",
        "created": 1,
        "updated": 0,
        "deleted": 0,
        "live": 1,
        "active": 1,
        "revenue": {"CAD": "14.50"},
        "rejected": {},
    }


def test_a_permit_is_active_only_between_its_start_and_end(worker):
    worker.fold(result(start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=2)))
    assert worker.zone(now=NOW)["active"] == 0
    assert worker.zone(now=NOW + timedelta(hours=1))["active"] == 1
    assert worker.zone(now=NOW + timedelta(hours=2))["active"] == 0
    assert worker.zone(now=NOW + timedelta(hours=2))["live"] == 1  # ended, not deleted


def test_an_update_replaces_the_amount_and_moves_the_end(worker):
    worker.fold(result(amount="14.50", end=NOW + timedelta(minutes=30)))
    worker.fold(
        result("permits/update", amount="20.00", currency="CAD", end=NOW + timedelta(hours=2))
    )
    later = NOW + timedelta(hours=1)
    zone = worker.zone(now=later)
    assert (zone["created"], zone["updated"], zone["active"]) == (1, 1, 1)
    assert zone["revenue"] == {"CAD": "20.00"}


def test_an_update_in_another_currency_moves_the_revenue_to_it(worker):
    worker.fold(result(amount="10.00", currency="CAD"))
    worker.fold(result("permits/update", amount="8.00", currency="USD"))
    assert worker.zone()["revenue"] == {"CAD": "0.00", "USD": "8.00"}


def test_revenue_is_kept_apart_for_any_currency_code(worker):
    worker.fold(result(session_id="a", amount="10.00", currency="EUR"))
    worker.fold(result(session_id="b", amount="2.50", currency="POINTS-123"))
    worker.fold(result(session_id="c", amount="1.25", currency="EUR"))
    worker.fold(result(session_id="d", amount="1.00", currency="CAD"))
    assert worker.zone()["revenue"] == {"EUR": "11.25", "POINTS-123": "2.50", "CAD": "1.00"}


def test_a_delete_ends_the_permit_for_live_and_active_but_keeps_its_revenue(worker):
    worker.fold(result())
    worker.fold(result("permits/delete"))
    zone = worker.zone()
    assert (zone["created"], zone["deleted"], zone["live"], zone["active"]) == (1, 1, 0, 0)
    assert zone["revenue"] == {"CAD": "14.50"}


def test_a_rejection_counts_its_error_code_under_the_zone_of_the_permit(worker):
    worker.fold(result(zone="Lot 9"))
    # An update's result carries no zone; the Controller lost the permit: 9009.
    worker.fold(result("permits/update", outcome="REJECTED", error_code=9009, amount="1.00"))
    zone = worker.zone("Lot 9")
    assert zone["rejected"] == {"9009": 1}
    assert (zone["updated"], zone["live"], zone["revenue"]) == (0, 1, {"CAD": "14.50"})


def test_a_rejected_push_is_not_a_permit(worker):
    worker.fold(result(outcome="REJECTED", error_code=9006))
    zone = worker.zone()
    assert (zone["created"], zone["live"], zone["revenue"], zone["rejected"]) == (
        0,
        0,
        {},
        {"9006": 1},
    )


def test_results_of_vehicles_and_profiles_are_not_zone_statistics(worker):
    worker.fold(result("vehicles/push", session_id=None))
    worker.fold(result("profiles/push", session_id=None))
    assert worker.table == {}


def test_an_update_of_a_permit_never_seen_counts_under_no_zone(worker):
    worker.fold(result("permits/update", session_id="elsewhere", amount="3.00"))
    zone = worker.zone(None)
    assert (zone["updated"], zone["live"], zone["revenue"]) == (1, 0, {})


def test_zones_vendors_and_days_are_kept_apart(worker):
    worker.fold(result(session_id="a", zone="Lot 1", vendor="hotspot"))
    worker.fold(result(session_id="b", zone="Lot 1", vendor="banner", amount="2.00"))
    worker.fold(result(session_id="c", zone="Lot 2", completed=NOW - timedelta(days=1)))
    answer_ = worker.stats()
    assert [(z["zone"], z["created"]) for z in answer_["zones"]] == [("Lot 1", 2), ("Lot 2", 1)]
    assert [(v["zone"], v["vendor"], v["revenue"]) for v in answer_["vendors"]] == [
        ("Lot 1", "banner", {"CAD": "2.00"}),
        ("Lot 1", "hotspot", {"CAD": "14.50"}),
        ("Lot 2", "hotspot", {"CAD": "14.50"}),
    ]
    assert [(d["day"], d["zone"], d["vendor"]) for d in answer_["days"]] == [
        ("2024-04-30", "Lot 2", "hotspot"),
        ("2024-05-01", "Lot 1", "banner"),
        ("2024-05-01", "Lot 1", "hotspot"),
    ]


def test_the_day_is_the_utc_day_the_controller_answered(worker):
    # 23:30 in Toronto on April 30 is May 1 in UTC.
    late = datetime(2024, 5, 1, 3, 30, tzinfo=UTC)
    worker.fold(result(completed=late))
    assert [d["day"] for d in worker.stats()["days"]] == ["2024-05-01"]


# --- counted once ---------------------------------------------------------------------------


def test_a_duplicate_result_of_a_command_is_counted_once(worker):
    push = result(command_id="c1:permits/push")
    worker.fold(push)
    worker.fold(dict(push, completed_at=NOW + timedelta(seconds=5)))  # the dispatcher, again
    zone = worker.zone()
    assert (zone["created"], zone["live"], zone["revenue"]) == (1, 1, {"CAD": "14.50"})


def test_a_duplicate_rejection_is_counted_once(worker):
    rejected = result(command_id="c1:permits/push", outcome="REJECTED", error_code=9006)
    worker.fold(rejected)
    worker.fold(rejected)
    assert worker.zone()["rejected"] == {"9006": 1}


def test_a_dead_letter_replayed_after_a_fix_counts_its_rejection_and_its_application(worker):
    worker.fold(result(command_id="c1:permits/push", outcome="REJECTED", error_code=9002))
    worker.fold(result(command_id="c1:permits/push"))
    zone = worker.zone()
    assert (zone["rejected"], zone["created"], zone["live"]) == ({"9002": 1}, 1, 1)


def test_a_result_redelivered_to_the_stats_agent_is_not_counted_again(worker):
    offset = worker.fold(result())
    worker.fold(result("permits/update", amount="20.00"))
    before = worker.stats()
    worker.fold(result(command_id="unused"), offset=offset)  # same offset: already folded
    assert worker.stats() == before


def test_a_fold_interrupted_after_some_rows_were_stored_completes_without_double_counting(
    worker,
):
    push = result()
    worker.fold(push, offset=0)
    # A crash lost the session row and the day row; the all-time row reached the changelog.
    kept = {
        k: v for k, v in worker.table.items() if k == stats.row_key(0, "Lot 4", "hotspot", None)
    }
    worker.table.clear()
    worker.table.update(kept)
    worker.fold(push, offset=0)  # redelivered after the restart
    zone = worker.zone()
    assert (zone["created"], zone["live"], zone["revenue"]) == (1, 1, {"CAD": "14.50"})
    assert [d["created"] for d in worker.stats()["days"]] == [1]


def test_a_session_remembers_a_bounded_number_of_commands(worker):
    worker.fold(result())
    for _ in range(stats.SEEN_PER_SESSION * 3):
        worker.fold(result("permits/update"))
    [session] = [v for k, v in worker.table.items() if k.startswith(stats.SESSION_PREFIX)]
    assert len(session["seen"]) == stats.SEEN_PER_SESSION


# --- exact money ----------------------------------------------------------------------------

amounts = st.decimals(min_value="0.00", max_value="999999.99", places=2)


@settings(max_examples=50, deadline=None)
@given(pushed=st.lists(st.tuples(amounts, st.sampled_from(["CAD", "USD"])), max_size=40))
def test_revenue_is_the_exact_decimal_sum_of_the_amounts(pushed):
    worker = Worker()
    expected: dict[str, Decimal] = {}
    for index, (amount, currency) in enumerate(pushed):
        session = f"s{index}"
        worker.fold(
            result(session_id=session, amount=str(amount), currency=currency),
            partition=index % 3,
        )
        expected[currency] = expected.get(currency, Decimal("0")) + amount
    revenue = worker.zone()["revenue"] if pushed else {}
    assert {c: Decimal(a) for c, a in revenue.items()} == expected


def test_cents_add_up_where_floats_would_not(worker):
    for index in range(3):
        worker.fold(result(session_id=f"s{index}", amount="0.10"), partition=index)
    assert worker.zone()["revenue"] == {"CAD": "0.30"}  # 0.1 + 0.1 + 0.1 == 0.30000000000000004


# --- answering ------------------------------------------------------------------------------


def test_rows_of_every_partition_sum_into_one_zone(worker):
    for partition in range(3):
        worker.fold(result(session_id=f"s{partition}"), partition=partition)
    assert worker.zone()["created"] == 3
    assert len([k for k in worker.table if k.startswith(stats.ROW_PREFIX)]) == 6


def test_a_worker_answers_only_for_the_partitions_it_owns(worker):
    for partition in range(3):
        worker.fold(result(session_id=f"s{partition}"), partition=partition)
    query = StatsQuery()
    rows = partial_rows(worker.table.items(), {1}, query, query.days(TODAY), NOW)
    [total] = [r for r in rows if r["day"] is None]
    assert total["created"] == 1


def test_an_answer_missing_a_partition_says_it_is_incomplete():
    data = answer([{"partitions": [0, 2], "rows": []}], 3, StatsQuery(), NOW)
    assert (data["complete"], data["missing_partitions"]) == (False, [1])


def test_a_period_counts_its_days_and_live_stays_as_of_now(worker):
    worker.fold(result(session_id="old", completed=NOW - timedelta(days=10)))
    worker.fold(result(session_id="new"))
    query = StatsQuery(since=TODAY - timedelta(days=1), until=TODAY)
    zone = worker.zone(query=query)
    assert (zone["created"], zone["live"]) == (1, 2)
    assert worker.zone()["created"] == 2  # all time


def test_zones_are_matched_case_blind_and_vendors_exactly(worker):
    worker.fold(result(session_id="a", zone="Lot 4", vendor="hotspot"))
    worker.fold(result(session_id="b", zone="Red Lot", vendor="banner"))
    only = worker.stats(query=parse_query({"zones": "lot 4, RED LOT", "vendor": "banner"}))
    assert [(v["zone"], v["vendor"]) for v in only["vendors"]] == [("Red Lot", "banner")]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"since": "2024-13-01"}, "since must be a day"),
        ({"until": "yesterday"}, "until must be a day"),
        ({"since": "2024-05-02", "until": "2024-05-01"}, "since is after until"),
    ],
)
def test_a_bad_query_is_refused_with_its_reason(params, reason):
    with pytest.raises(ValueError, match=reason):
        parse_query(params)


def test_days_listed_default_to_the_last_week():
    assert StatsQuery().days(date(2024, 5, 7)) == (date(2024, 5, 1), date(2024, 5, 7))
    until = date(2024, 4, 30)
    assert StatsQuery(until=until).days(TODAY) == (date.min, until)
    assert StatsQuery(since=until).days(TODAY) == (until, TODAY)


def test_a_period_open_at_its_start_counts_every_day_before_its_end(worker):
    worker.fold(result(session_id="old", completed=NOW - timedelta(days=30)))
    worker.fold(result(session_id="new"))
    assert worker.zone(query=StatsQuery(until=TODAY - timedelta(days=1)))["created"] == 1


# --- bounded state --------------------------------------------------------------------------


def test_day_rows_past_retention_and_old_sessions_are_pruned_but_all_time_rows_stay(worker):
    long_ago = NOW - timedelta(days=stats.DAY_RETENTION_DAYS + 1)
    old = result(session_id="old", completed=long_ago, start=long_ago, end=long_ago)
    worker.fold(old, now=long_ago)
    assert len(worker.table) == 3
    worker.fold(result(session_id="new"), now=NOW)  # the first fold of a new day prunes
    keys = set(worker.table)
    assert stats.session_key("old") not in keys
    assert stats.row_key(0, "Lot 4", "hotspot", long_ago.date().isoformat()) not in keys
    assert stats.row_key(0, "Lot 4", "hotspot", None) in keys
    assert worker.zone()["created"] == 2


def test_a_live_permit_ending_in_the_future_keeps_its_session():
    key = stats.session_key("s")
    session = {"at": "2024-01-01T00:00:00", "end": "2025-01-01T00:00:00"}
    assert not stats.expired(key, session, NOW)
    assert stats.expired(key, session, datetime(2025, 3, 1, tzinfo=UTC))


# --- metrics --------------------------------------------------------------------------------


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def labels(worker) -> stats.ZoneLabels:
    """The worker's zone labels with "Metric Lot" configured (the alias table)."""
    fresh = stats.ZoneLabels(["Metric Lot"])
    worker.zone_stats.labels.zone_labels = fresh
    return fresh


def test_folding_counts_zone_permits_and_revenue_metrics_once(worker, labels):
    labels_of = {"zone": "Metric Lot", "vendor": "hotspot", "action": "CREATE"}
    before = _sample("parkstream_zone_permits_total", **labels_of)
    money = _sample("parkstream_zone_revenue_total", zone="Metric Lot", currency="USD")
    push = result(zone="Metric Lot", amount="2.25", currency="USD")
    worker.fold(push)
    worker.fold(push)
    assert _sample("parkstream_zone_permits_total", **labels_of) == before + 1
    assert _sample("parkstream_zone_revenue_total", zone="Metric Lot", currency="USD") == (
        money + 2.25
    )


def _zone_label_values(vendor: str) -> set[str]:
    return {
        sample.labels["zone"]
        for metric in REGISTRY.collect()
        if metric.name == "parkstream_zone_permits"
        for sample in metric.samples
        if sample.labels.get("vendor") == vendor
    }


def test_a_vendors_made_up_zones_take_no_label_slot(worker):
    # Neither configured nor reported by the Controller: no label of their own.
    for n in range(stats.ZONE_LABEL_LIMIT + 50):
        worker.fold(result(session_id=f"made-up-{n}", zone=f"made-up zone {n}", vendor="madeup"))
    assert _zone_label_values("madeup") == {stats.OTHER_ZONES}


def test_junk_zones_of_one_vendor_are_counted_as_other_and_evict_no_zone(worker, labels):
    labels.learn({"data": [{"type": "temp", "zone": "Reported Lot", "total": "3"}]})
    junk = [f"junk zone {n:03d}" for n in range(500)]
    other = {"zone": stats.OTHER_ZONES, "vendor": "junkco", "action": "CREATE"}
    before = _sample("parkstream_zone_permits_total", **other)
    for n, zone in enumerate(junk):
        worker.fold(result(session_id=f"junk-{n}", zone=zone, vendor="junkco"))
    for zone in ("Metric Lot", "reported lot"):
        worker.fold(result(session_id=f"real-{zone}", zone=zone, vendor="junkco"))
    assert _sample("parkstream_zone_permits_total", **other) == before + 500
    for zone in ("Metric Lot", "Reported Lot"):
        assert _sample("parkstream_zone_permits_total", **{**other, "zone": zone}) >= 1, zone
    for zone in junk:
        series = {**other, "zone": zone}
        assert REGISTRY.get_sample_value("parkstream_zone_permits_total", series) is None
    # The statistics table still holds every zone's exact figures (docs/stats.md).
    assert worker.zone("junk zone 499")["created"] == 1


def test_a_zone_the_controller_stops_reporting_loses_its_series(worker, labels):
    labels.learn({"data": [{"type": "temp", "zone": "Gone Lot", "total": "1"}]})
    worker.fold(result(session_id="g1", zone="Gone Lot", amount="3.00", currency="CAD"))
    gone = {"zone": "Gone Lot", "vendor": "hotspot", "action": "CREATE"}
    assert _sample("parkstream_zone_permits_total", **gone) == 1
    assert worker.zone_stats.labels.learn_controller_zones({"data": []})
    assert REGISTRY.get_sample_value("parkstream_zone_permits_total", gone) is None
    assert (
        REGISTRY.get_sample_value(
            "parkstream_zone_revenue_total", {"zone": "Gone Lot", "currency": "CAD"}
        )
        is None
    )
    before = _sample("parkstream_zone_permits_total", **{**gone, "zone": stats.OTHER_ZONES})
    worker.fold(result(session_id="g2", zone="Gone Lot"))
    assert _sample("parkstream_zone_permits_total", **{**gone, "zone": stats.OTHER_ZONES}) == (
        before + 1
    )


def test_made_up_currencies_share_the_other_currency_label(worker, labels):
    worker.zone_stats.labels.currency_labels = stats.CurrencyLabels(["CAD", "USD"], limit=3)
    for n in range(20):
        worker.fold(
            result(session_id=f"c{n}", zone="Metric Lot", amount="1.00", currency=f"MADE{n:02d}")
        )
    currencies = {
        sample.labels["currency"]
        for metric in REGISTRY.collect()
        if metric.name == "parkstream_zone_revenue"
        for sample in metric.samples
        if sample.labels.get("zone") == "Metric Lot"
    }
    assert {c for c in currencies if c.startswith("MADE")} == {"MADE00"}
    assert stats.OTHER_CURRENCIES in currencies


# --- one worker's statistics ------------------------------------------------------------------


def test_two_workers_built_in_one_process_keep_their_own_stats(tmp_path):
    aliases = tmp_path / "zones.json"
    aliases.write_text(json.dumps({"Lot 4": ["L4"]}))
    first = build_worker(Settings(zone_aliases=aliases, table_store="memory")).stats
    second = build_worker(Settings(table_store="memory")).stats

    # Labels: neither the second build nor the zones the second worker learns relabel the first.
    second.labels.learn_controller_zones({"data": [{"type": "temp", "zone": "Red Lot"}]})
    other = stats.OTHER_ZONES
    assert [first.labels.zone_label(z) for z in ("lot 4", "Red Lot")] == ["Lot 4", other]
    assert [second.labels.zone_label(z) for z in ("lot 4", "Red Lot")] == [other, "Red Lot"]
    # Tables: a result folded and kept by one worker is news to the other.
    push = result(session_id="both")
    kept = first.fold_event(push, 0, 0, "both", now=NOW)
    for key, value in kept.writes:  # acknowledged
        first.table.data.apply_acknowledged(TP("zone_stats-changelog", 0), 0, key, value)
    assert first.fold_event(push, 0, 0, "both", now=NOW) is None  # redelivered: already held
    assert second.fold_event(push, 0, 0, "both", now=NOW) is not None
    assert (
        stats.session_key("both") in first.table and stats.session_key("both") not in second.table
    )
