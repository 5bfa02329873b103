"""Log lines: ``key="value"`` text for people, JSON with the facts as fields for shippers."""

from __future__ import annotations

import json
import logging
import sys

from foundation import logs


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "consumers.dispatch", logging.WARNING, __file__, 1, msg, args, exc_info
    )


DEAD_LETTER = 'dead letter reason="%s" error_code="%s" partition=%d offset=%d key="%s" seconds=%.2f'


def test_json_lines_carry_each_fact_as_a_field_of_its_own_type() -> None:
    record = _record(DEAD_LETTER, "controller_error", 9022, 3, 1207, 'ps-1 "quoted" x=y', 0.256)
    entry = json.loads(logs._JsonFormatter().format(record))
    assert entry["message"] == (
        'dead letter reason="controller_error" error_code="9022" partition=3 offset=1207 '
        'key="ps-1 "quoted" x=y" seconds=0.26'
    )
    assert entry["event"] == "dead letter"
    assert entry["level"] == "warning" and entry["logger"] == "consumers.dispatch"
    assert entry["time"].endswith("+00:00")
    # Each value exactly as passed, whatever it contains; numbers stay numbers.
    assert {k: entry[k] for k in ("reason", "error_code", "partition", "offset", "key")} == {
        "reason": "controller_error",
        "error_code": "9022",
        "partition": 3,
        "offset": 1207,
        "key": 'ps-1 "quoted" x=y',
    }
    assert entry["seconds"] == 0.26


def test_a_fact_never_overwrites_the_line_s_own_fields_and_secrets_are_masked() -> None:
    record = _record('odd level="%s" message="%s" body="%s"', "x", "y", '{"apiToken":"t0k"}')
    line = logs._JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["message"].startswith("odd level=")
    assert entry["fact_level"] == "x" and entry["fact_message"] == "y"
    assert "t0k" not in line


def test_a_line_without_facts_or_with_an_exception() -> None:
    entry = json.loads(logs._JsonFormatter().format(_record("worker stopping", exc=True)))
    assert entry["event"] == entry["message"] == "worker stopping"
    assert "ValueError: boom" in entry["exception"]


def test_the_text_format_is_the_message_as_written() -> None:
    formatter = logs._TextFormatter("%(levelname)s %(name)s %(message)s")
    line = formatter.format(_record('duplicate dropped topic="%s"', "sessions"))
    assert line == 'WARNING consumers.dispatch duplicate dropped topic="sessions"'


def test_a_hexadecimal_or_octal_fact_stays_its_text() -> None:
    entry = json.loads(logs._JsonFormatter().format(_record("flags mask=%x mode=%o", 255, 8)))
    assert (entry["mask"], entry["mode"]) == ("ff", "10")
