"""The sandbox journal: every /api/ call, with its token masked, in a bounded ring.

Entries keep a sequence number that only grows (also across ``clear``), so a reader
can poll with ``since=<last seq>``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from schemas.controller import TOKEN_FIELDS, redact_tokens

MASK = "***"
RAW_BODY_LIMIT = 4096  # characters kept of a body journaled as text
PARSED_BODY_LIMIT = 64 * 1024  # bytes up to which a JSON body is journaled as JSON

# A token field inside text that is not valid JSON.
_RAW_TOKEN = re.compile(
    r'("(?:' + "|".join(sorted(TOKEN_FIELDS)) + r')"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\s]*)'
)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    time: str
    method: str
    path: str
    endpoint: str | None
    status: int | None
    error_code: int | None
    fault: str | None
    duration_ms: float
    body: Any
    answer: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


def mask_body(parsed: Any, raw: bytes, secrets: Iterable[str]) -> Any:
    """The journal form of a request body: token fields and known secrets masked.

    ``parsed`` is the JSON value, or None when the body did not parse. Unparsed and
    large bodies are journaled as masked text cut to RAW_BODY_LIMIT characters.
    """
    known = tuple(s for s in secrets if s)
    if parsed is not None and len(raw) <= PARSED_BODY_LIMIT:
        return _scrub(redact_tokens(parsed, MASK), known)
    text = raw.decode("utf-8", errors="replace")
    text = _RAW_TOKEN.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    return _scrub(text, known)[:RAW_BODY_LIMIT]


class Journal:
    """The last ``capacity`` calls, oldest first."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)
        self._seq = 0

    def record(self, **values: Any) -> JournalEntry:
        self._seq += 1
        entry = JournalEntry(seq=self._seq, **values)
        self._entries.append(entry)
        return entry

    def entries(
        self, *, since: int = 0, limit: int | None = None, endpoint: str | None = None
    ) -> list[dict[str, Any]]:
        selected = [
            e.to_dict()
            for e in self._entries
            if e.seq > since and (endpoint is None or e.endpoint == endpoint)
        ]
        return selected if limit is None else selected[:limit]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
