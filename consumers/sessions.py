"""The ``sessions`` table's rules: its keys, and how long a session's state is kept.

``sessions`` maps a parkstream reference id (as bytes: ``session_key``) to what became of
its session: ``{"state", "controller_ref", "at", "end", "error_code", "error_message", ...}``
(``schemas.status.SessionState`` names the states). The dispatcher writes it; the status
endpoint reads it.

Retention. A session whose state is settled (delivered, deleted or dead-lettered) is
dropped once its permit ended, or it was last changed, more than
``PARKSTREAM_SESSION_RETENTION_DAYS`` ago, whichever is later. A session in doubt is never
dropped: an operator settles it (``parkstream dlq resolve``). What a late event for a
dropped session gets is in docs/delivery.md ("Retention"). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from schemas.status import SessionState

# Once a session is in one of these, nothing it waits for: its state may be dropped.
SETTLED = frozenset({SessionState.DELIVERED, SessionState.DELETED, SessionState.DEAD_LETTERED})


def session_key(reference_id: str) -> bytes:
    """The ``sessions`` table key of a parkstream reference id."""
    return reference_id.encode()


def settled_since(state: dict[str, Any]) -> datetime | None:
    """From when a settled session's retention counts: the later of its permit's end and
    its last change; ``None`` for a session that is not settled (never dropped)."""
    if state.get("state") not in SETTLED or not state.get("at"):
        return None
    since = datetime.fromisoformat(state["at"])
    if state.get("end"):
        since = max(since, datetime.fromisoformat(state["end"]))
    return since


def expired_sessions(
    entries: Iterable[tuple[bytes, dict[str, Any] | None]], now: datetime, retention: timedelta
) -> list[bytes]:
    """Keys of the settled sessions among ``entries`` whose retention has passed at ``now``."""
    expired = []
    for key, state in entries:
        since = settled_since(state or {})
        if since is not None and since + retention < now:
            expired.append(key)
    return expired
