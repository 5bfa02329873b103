"""Logging set-up: ``key="value"`` text lines, or JSON with ``PARKSTREAM_LOG_FORMAT=json``.

Modules log through ``logging.getLogger(__name__)`` and put facts in the message
as ``key="value"`` pairs, each value a ``%`` conversion with its own argument::

    log.warning('dead letter reason="%s" partition=%d', reason, partition)

People read the text line as written. In JSON each fact is also a field of its own,
taken from that conversion's argument (so a value holding quotes or spaces arrives
whole; ``%d`` and ``%f`` values are numbers), beside ``time``, ``level``, ``logger``,
``event`` (the words before the first fact) and ``message`` (the text line)::

    {"time": "...", "level": "warning", "logger": "foundation.worker.app", "event": "dead letter",
     "message": "dead letter reason=\"undecodable\" partition=3", "reason": "undecodable",
     "partition": 3}

A fact named like one of those fields is written as ``fact_<name>``. Tokens never
reach a log: callers do not log them, and ``foundation.redaction.redact`` masks
anything that looks like an ``apiToken`` field, in the message and in every fact, as a
last guard.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from foundation.redaction import redact

# One printf-style conversion of a log message (``%s``, ``%d``, ``%.2f``, ``%%``...).
_CONVERSION = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?P<type>[diouxXeEfFgGcrsa%])"
)
# The fact name right before a conversion: ``key=`` or ``key="``.
_FACT_NAME = re.compile(r'(?<![\w.])(?P<name>\w+)=(?P<quote>"?)$')
_LINE_FIELDS = frozenset({"time", "level", "logger", "event", "message", "exception"})


def facts(record: logging.LogRecord) -> tuple[str | None, dict[str, Any]]:
    """``(event, {name: value})`` of a record's ``key="%s"`` conversions and their arguments.

    ``event`` is the text before the first fact (``None`` for a line without facts).
    """
    template, args = record.msg, record.args
    if not isinstance(template, str) or not isinstance(args, tuple) or not args:
        return None, {}
    found: dict[str, Any] = {}
    event: str | None = None
    position = 0
    for conversion in _CONVERSION.finditer(template):
        kind = conversion["type"]
        if kind == "%":
            continue
        if position >= len(args):
            break
        arg = args[position]
        position += 1
        named = _FACT_NAME.search(template, 0, conversion.start())
        if named is None:
            continue
        if event is None:
            event = template[: named.start()].strip()
        try:
            text = conversion.group(0) % (arg,)
        except (TypeError, ValueError):
            continue
        value: Any = text
        if kind in "diu" and not named["quote"]:  # %x and %o stay their text
            value = int(text)
        elif kind in "eEfFgG" and not named["quote"]:
            value = float(text)
        elif kind == "s" and not named["quote"] and type(arg) in (int, float, bool):
            value = arg
        name = named["name"]
        found[f"fact_{name}" if name in _LINE_FIELDS else name] = value
    return event, found


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(JsonFormatter):
    """One JSON object a line: the line's own fields, then each fact (``facts``)."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)  # ``extra=`` fields, exc_info
        message = redact(record.message)  # JsonFormatter.format has just formatted it
        event, found = facts(record)
        exception = log_data.pop("exc_info", None)
        log_data.pop("message", None)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": message if event is None else redact(event),
            "message": message,
        }
        if exception:
            line["exception"] = redact(str(exception))
        for name, value in {**log_data, **found}.items():
            line[name] = redact(value) if isinstance(value, str) else value
        log_data.clear()
        log_data.update(line)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send every log record to stderr in the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # librdkafka-level chatter and aiokafka's reconnect noise are not operator facts.
    for noisy in ("aiokafka", "kafka", "faust.transport", "aiohttp.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
