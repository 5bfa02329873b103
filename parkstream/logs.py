"""Logging set-up: ``key="value"`` text lines, or JSON with ``PARKSTREAM_LOG_FORMAT=json``.

Modules log through ``logging.getLogger(__name__)`` and put facts in the message
as ``key="value"`` pairs. Tokens never reach a log: callers do not log them, and
``parkstream.redaction.redact`` masks anything that looks like an ``apiToken`` field as
a last guard.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from parkstream.redaction import redact


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


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
