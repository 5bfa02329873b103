"""``parkstream stats``: the table, the comparison with the Controller, and the exit codes."""

from __future__ import annotations

import argparse
import io
from datetime import date

import pytest

from foundation.broker import free_port
from foundation.settings import Settings
from parkstream.stats_report import (
    UNAVAILABLE,
    USAGE,
    add_stats_arguments,
    compare_zones,
    controller_totals,
    render_comparison,
    render_stats,
    run_from_args,
    run_stats,
    zones_argument,
)
from schemas.controller import stats_body

ANSWER = {
    "as_of": "2024-05-01T12:00:00+00:00",
    "since": None,
    "until": None,
    "complete": True,
    "partitions": 3,
    "missing_partitions": [],
    "zones": [
        {
            "zone": "Lot 4",
            "created": 3,
            "updated": 1,
            "deleted": 1,
            "live": 2,
            "active": 1,
            "revenue": {"CAD": "29.00", "USD": "5.25"},
            "rejected": {"9009": 1},
        },
        {
            "zone": None,
            "created": 1,
            "updated": 0,
            "deleted": 0,
            "live": 1,
            "active": 0,
            "revenue": {},
            "rejected": {},
        },
    ],
    "vendors": [],
    "days": [],
}


def test_the_table_shows_every_figure_per_zone():
    text = render_stats(ANSWER)
    header, lot4, nozone = text.splitlines()[1:]
    assert header.split() == [
        "zone",
        "created",
        "updated",
        "deleted",
        "live",
        "active",
        "revenue",
        "rejected",
    ]
    assert lot4.split()[:7] == ["Lot", "4", "3", "1", "1", "2", "1"]
    assert "CAD 29.00, USD 5.25" in lot4
    assert "9009: 1" in lot4
    assert nozone.startswith("(no zone)")
    assert "all time" in text.splitlines()[0]


def test_an_empty_answer_says_there_are_no_permits():
    assert render_stats({**ANSWER, "zones": []}).endswith("(no permits)")


def test_controller_totals_sum_permit_types_per_zone():
    body = stats_body([("standard", "Lot 4", 4), ("temp", "Lot 4", 35), ("temp", None, 2)])
    assert controller_totals(body) == {"Lot 4": 39, None: 2}


def test_equal_zones_agree():
    result = compare_zones({"Lot 4": 2, None: 1}, {"Lot 4": 2, None: 1})
    assert result.agrees
    assert render_comparison(result).endswith("2 zone(s) compared, 0 differ")


def test_a_zone_that_differs_is_shown_with_its_difference():
    result = compare_zones({"Lot 4": 2, "Lot 5": 1}, {"Lot 4": 3, "Lot 5": 1})
    assert not result.agrees
    assert result.differing == [("Lot 4", 2, 3)]
    assert "-1" in render_comparison(result).splitlines()[1]


def test_zones_are_compared_case_blind_as_the_controller_collates_them():
    assert compare_zones({"Lot 4": 1, "LOT 4": 1}, {"lot 4": 2}).agrees


def test_a_zone_only_the_controller_has_permits_in_differs():
    result = compare_zones({}, {"Lot 7": 1})
    assert result.differing == [("Lot 7", 0, 1)]


def test_a_zone_the_controller_does_not_report_is_listed_as_disconnected():
    result = compare_zones({"Lot 4": 1, "Unknown Lot": 2, "Empty Lot": 0}, {"Lot 4": 1})
    assert result.unreported == [("Unknown Lot", 2)]
    assert not result.agrees
    text = render_comparison(result)
    assert "disconnected records" in text
    assert "  Unknown Lot: 2" in text


def test_the_cli_options_parse_into_run_stats_arguments():
    parser = argparse.ArgumentParser()
    add_stats_arguments(parser)
    args = parser.parse_args(
        ["--zones", "Lot 4, Red Lot", "--since", "2024-05-01", "--by", "vendor", "--compare"]
    )
    assert zones_argument(args.zones) == ["Lot 4", "Red Lot"]
    assert (args.since, args.until, args.by, args.compare) == (
        date(2024, 5, 1),
        None,
        "vendor",
        True,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--since", "May 1"])


def test_parsed_options_run_the_report(capsys):
    parser = argparse.ArgumentParser()
    add_stats_arguments(parser)
    args = parser.parse_args(["--compare", "--vendor", "hotspot"])
    settings = Settings.from_env({"PARKSTREAM_CONTROLLER_API_TOKEN": "t"})
    assert run_from_args(settings, args) == USAGE  # the Controller's stats have no vendor


def _run(**overrides) -> tuple[int, str]:
    settings = Settings.from_env({"PARKSTREAM_CONTROLLER_API_TOKEN": "t"})
    out = io.StringIO()
    kwargs = {
        "zones": None,
        "vendor": None,
        "since": None,
        "until": None,
        "compare": False,
        "worker_url": f"http://127.0.0.1:{free_port()}",
        "out": out,
        **overrides,
    }
    return run_stats(settings, **kwargs), out.getvalue()


@pytest.mark.parametrize(
    "overrides",
    [
        {"compare": True, "since": date(2024, 5, 1)},
        {"compare": True, "vendor": "hotspot"},
        {"since": date(2024, 5, 2), "until": date(2024, 5, 1)},
    ],
)
def test_arguments_that_cannot_be_answered_exit_2(overrides, capsys):
    code, _ = _run(**overrides)
    assert code == USAGE
    assert "parkstream stats:" in capsys.readouterr().err


def test_an_unreachable_worker_exits_3(capsys):
    code, out = _run()
    assert (code, out) == (UNAVAILABLE, "")
    assert "did not answer" in capsys.readouterr().err
