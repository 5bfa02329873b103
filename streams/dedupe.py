"""Dedupe: the same vendor sending the same session content twice is applied once.

A *fingerprint* is taken over what the Controller would receive (vendor, session,
action and normalized content; not the event id or arrival time), so a vendor's
timeout retry and an identical resend in another spelling (``pl8 rdr`` for
``PL8RDR``, ``09:00-04:00`` for ``13:00Z``) are the same. Per key the worker keeps
the latest fingerprint and whether the session was created, in a changelogged
table keyed like the topic, so dedupe survives restarts. An event is a duplicate when

- it repeats the key's latest content within the window (a retry), or
- it creates a session that was already created (a session has one push).

Only the latest content counts, so an update back to an earlier value (A, B, A)
is applied. An entry is dropped once no event can be a duplicate of it any more
(``expired``): its latest content older than the window, and a session's "created" mark
older than the sessions' retention. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

# Fields that identify an event or its arrival rather than its content.
_NOT_CONTENT = frozenset({"event_id", "received_at", "idempotency_key", "source"})


def _plain(value: Any) -> Any:
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def fingerprint(event: dict[str, Any]) -> str:
    """A digest of the event's content (enriched values, so spellings converge)."""
    content = {k: _plain(v) for k, v in sorted(event.items()) if k not in _NOT_CONTENT}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


def check(
    state: dict[str, Any] | None, event: dict[str, Any], now: datetime, window: timedelta
) -> tuple[bool, dict[str, Any]]:
    """``(is a duplicate, the key's new state)`` for ``event`` arriving at ``now``."""
    state = state or {}
    creates = event.get("action") == "CREATE"
    print_ = fingerprint(event)
    if creates and state.get("created"):
        return True, state
    last_at = state.get("at")
    if (
        state.get("last") == print_
        and last_at is not None
        and now - datetime.fromisoformat(last_at) < window
    ):
        return True, state
    return False, {
        "last": print_,
        "at": now.isoformat(),
        "created": bool(state.get("created")) or creates,
    }


def expired(
    state: dict[str, Any], now: datetime, window: timedelta, created_retention: timedelta
) -> bool:
    """Whether ``state`` may be dropped at ``now``: its key's latest event is older than
    the window, and, when it created a session, older than ``created_retention`` too (the
    sessions' retention: a second create of a session is dropped that long)."""
    last_at = state.get("at")
    if last_at is None:
        return True
    keep = max(window, created_retention) if state.get("created") else window
    return datetime.fromisoformat(last_at) + keep < now
