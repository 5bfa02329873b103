"""Which zones and currencies get a metric label of their own: only zones the operator
configured (the alias table) or the Controller reports, and a bounded set of currencies,
whatever vendors send (streams/stats/labels.py, streams/zones.py, docs/metrics.md)."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundation.controller import ControllerClient
from foundation.settings import Settings
from streams import stats, zones
from streams.enrich import ZoneDirectory
from streams.stats import OTHER_ZONES, CurrencyLabels, MetricLabels, ZoneLabels


def stats_answer(*rows: tuple[str | None, int], kind: str = "temp") -> dict[str, Any]:
    """A permits/stats answer as documented: ``{"data": [{"type", "zone", "total"}]}``."""
    return {"data": [{"type": kind, "zone": zone, "total": str(total)} for zone, total in rows]}


def junk_zones(count: int, seed: int = 12) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_letters + " -", k=12)) for _ in range(count)]


# --- which zones get a label (pure) -----------------------------------------------------------


def test_junk_zones_of_one_vendor_are_other_and_evict_no_configured_or_reported_zone():
    labels = ZoneLabels(["Lot 4", "Visitor Garage"])
    labels.learn(stats_answer(("Red Lot", 3), ("Lot 4", 9)))
    assert {labels.label(zone) for zone in junk_zones(500)} == {OTHER_ZONES}
    assert [labels.label(z) for z in ("Lot 4", "Visitor Garage", "Red Lot")] == [
        "Lot 4",
        "Visitor Garage",
        "Red Lot",
    ]


def test_zones_match_as_the_controller_matches_them_case_blind_and_trimmed():
    labels = ZoneLabels(["Lot 4"])
    labels.learn(stats_answer(("Red Lot", 1), ("LOT 4", 2)))
    # The label is the operator's spelling, else the Controller's.
    assert [labels.label(z) for z in ("lot 4", " LOT 4 ", "red lot", "RED LOT")] == [
        "Lot 4",
        "Lot 4",
        "Red Lot",
        "Red Lot",
    ]
    assert labels.label("Lot 44") == OTHER_ZONES


def test_a_permit_without_a_zone_is_labelled_empty():
    assert ZoneLabels().label("") == ""
    assert ZoneLabels().label(None) == ""


def test_without_configuration_or_an_answer_every_zone_is_other():
    assert ZoneLabels().label("Lot 4") == OTHER_ZONES


def test_controller_zones_past_the_limit_keep_those_with_most_permits():
    labels = ZoneLabels(["Configured"], limit=3)
    answer = stats_answer(("A", 1), ("B", 5), ("C", 2), ("D", 2), ("E", 1), ("Configured", 1))
    answer["data"].append({"type": "standard", "zone": "E", "total": "4"})  # E: 5 in all
    assert labels.learn(answer)
    # B and E have 5, then C and D tie at 2: by name. A configured zone takes no slot.
    assert {z: labels.label(z) for z in "ABCDE"} == {
        "A": OTHER_ZONES,
        "B": "B",
        "C": "C",
        "D": OTHER_ZONES,
        "E": "E",
    }
    assert labels.label("Configured") == "Configured"


def test_a_new_answer_replaces_the_reported_zones():
    labels = ZoneLabels()
    assert labels.learn(stats_answer(("Red Lot", 1)))
    assert not labels.learn(stats_answer(("Red Lot", 4)))  # the same zone: nothing changed
    assert labels.learn(stats_answer(("Blue Lot", 1)))
    assert (labels.label("Red Lot"), labels.label("Blue Lot")) == (OTHER_ZONES, "Blue Lot")


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"data": "Lot 4"},
        {"data": ["Lot 4"]},
        {"data": [{"type": "temp", "zone": 4, "total": "1"}]},
        {"data": [{"type": "temp", "zone": "Lot 4", "total": "many"}]},
    ],
)
def test_an_answer_not_shaped_as_documented_changes_nothing(answer):
    labels = ZoneLabels()
    labels.learn(stats_answer(("Red Lot", 1)))
    with pytest.raises(ValueError):
        labels.learn(answer)
    assert labels.label("Red Lot") == "Red Lot"


@given(
    configured=st.lists(st.text(min_size=1, max_size=8), max_size=5),
    reported=st.lists(st.tuples(st.text(max_size=8), st.integers(0, 9)), max_size=30),
    sent=st.lists(st.text(max_size=8), max_size=60),
)
def test_label_values_stay_bounded_whatever_vendors_send(configured, reported, sent):
    labels = ZoneLabels(configured, limit=4)
    labels.learn(stats_answer(*reported))
    seen = {labels.label(zone) for zone in sent + configured + [z for z, _ in reported]}
    assert len(seen) <= len(configured) + 4 + 2  # "" and "other"
    assert seen <= labels.values


def test_currency_labels_keep_the_documented_and_default_ones_and_stay_bounded():
    labels = CurrencyLabels(["CAD", "USD", "EUR"], limit=5)
    made_up = [labels.label(f"X{n:03d}") for n in range(50)]
    assert made_up[:2] == ["X000", "X001"]
    assert set(made_up[2:]) == {stats.OTHER_CURRENCIES}
    assert [labels.label(c) for c in ("CAD", "USD", "EUR", "X001", "")] == [
        "CAD",
        "USD",
        "EUR",
        "X001",
        "",
    ]


def test_the_worker_always_labels_the_documented_and_the_default_currency():
    settings = Settings(default_currency="EUR")
    labels = stats.configure_labels(settings, ZoneDirectory())
    for currency in ("CAD", "USD", settings.default_currency):
        assert labels.currency_labels.label(currency) == currency


# --- the refresh from the Controller ----------------------------------------------------------


class Controller:
    """A Controller answering permits/stats through httpx's MockTransport, one answer a call."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response | Exception] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self) -> ControllerClient:
        return ControllerClient(
            "http://controller.test",
            "OC-TOMA",
            "controller-token",
            transport=httpx.MockTransport(self),
        )


@pytest.fixture
def labels() -> MetricLabels:
    return MetricLabels(ZoneLabels(["Lot 4"]))


async def test_a_refresh_labels_the_zones_the_controllers_permits_stats_lists(labels):
    controller = Controller()
    answer = stats_answer(("Red Lot", 2), (None, 1), *((z, 1) for z in junk_zones(5)))
    controller.answers.append(httpx.Response(200, json=answer))
    async with controller.client() as client:
        assert await zones.refresh_zones(client, labels)
    [request] = controller.requests
    assert request.url.path == "/api/OC-TOMA/v1/permits/stats"
    assert json.loads(request.content) == {"apiToken": "controller-token"}
    assert [labels.zone_label(z) for z in ("red lot", "Lot 4", "Blue Lot")] == [
        "Red Lot",
        "Lot 4",
        OTHER_ZONES,
    ]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503),
        httpx.Response(200, json={"ErrorCode": 9002, "ErrorMessage": "no permission"}),
        httpx.Response(200, json={"data": [{"zone": "Lot 9", "total": "lots"}]}),
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.ConnectError("refused"),
    ],
    ids=["5xx", "error-code", "malformed", "not-json", "unreachable"],
)
async def test_a_failed_refresh_keeps_the_last_good_list(labels, failure):
    controller = Controller()
    controller.answers += [httpx.Response(200, json=stats_answer(("Red Lot", 2))), failure]
    async with controller.client() as client:
        assert await zones.refresh_zones(client, labels)
        assert not await zones.refresh_zones(client, labels)
    assert labels.zone_label("Red Lot") == "Red Lot"
    assert labels.zone_label("Lot 9") == OTHER_ZONES
