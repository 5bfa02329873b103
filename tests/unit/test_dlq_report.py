import argparse
from datetime import UTC, datetime

import pytest

from consumers.deadletters import DeadLetterEntry
from parkstream.dlq_report import add_dlq_arguments, table


def entry(code=9009, key=b"ps-1"):
    record = {
        "failed_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "reason": "controller_rejected",
        "error_code": code,
        "topic": "parkstream.commands.v1",
        "partition": 2,
        "offset": 41,
        "error_message": "Record not found.",
    }
    return DeadLetterEntry(partition=0, offset=7, key=key, record=record)


def test_the_table_shows_time_reason_code_origin_key_and_message():
    text = table([entry()])
    header, row = text.splitlines()
    assert header.split()[:4] == ["failed", "at", "(UTC)", "reason"]
    for cell in (
        "2026-11-23 12:00:00",
        "controller_rejected",
        "9009",
        "parkstream.commands.v1[2]@41",
        "ps-1",
        "Record not found.",
    ):
        assert cell in row


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_dlq_arguments(parser)
    return parser.parse_args(argv)


def test_resolve_needs_the_controller_reference_or_that_the_controller_lacks_the_permit():
    with pytest.raises(SystemExit):
        parse("resolve", "ps-1")
    with pytest.raises(SystemExit):
        parse("resolve", "ps-1", "--controller-ref", "abc", "--not-in-controller")
    assert parse("resolve", "ps-1", "--controller-ref", "abc").controller_ref == "abc"
    lacking = parse("resolve", "ps-1", "--not-in-controller")
    assert lacking.not_in_controller and lacking.controller_ref is None


def test_a_since_without_an_offset_is_utc_and_a_bad_one_is_refused():
    assert parse("list", "--since", "2026-11-23").since == datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(SystemExit):
        parse("list", "--since", "yesterday")
