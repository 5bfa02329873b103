"""Dedupe: the same vendor sending the same session content twice is applied once.

A *fingerprint* is taken over what the Controller would receive (vendor, session,
action and normalized content; not the event id or arrival time), so a vendor's
timeout retry and an identical resend in another spelling (``pl8 rdr`` for
``PL8RDR``, ``09:00-04:00`` for ``13:00Z``) are the same. Each session keeps the
fingerprints it saw within the window; the worker stores that in a changelogged
table keyed like the topic, so dedupe survives restarts. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

# Fields that identify an event or its arrival rather than its content.
_NOT_CONTENT = frozenset({"event_id", "received_at", "idempotency_key"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def fingerprint(event: dict[str, Any]) -> str:
    """A digest of the event's content (enriched values, so spellings converge)."""
    content = {k: _plain(v) for k, v in sorted(event.items()) if k not in _NOT_CONTENT}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


def seen_within(seen: dict[str, str], print_: str, now: datetime, window: timedelta) -> bool:
    """True when ``print_`` was seen less than ``window`` before ``now``."""
    at = seen.get(print_)
    return at is not None and now - datetime.fromisoformat(at) < window


def remember(seen: dict[str, str], print_: str, now: datetime, window: timedelta) -> dict[str, str]:
    """``seen`` with ``print_`` at ``now`` and every entry older than ``window`` dropped."""
    kept = {p: at for p, at in seen.items() if now - datetime.fromisoformat(at) < window}
    kept[print_] = now.isoformat()
    return kept
