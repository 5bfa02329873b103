"""Redaction: the one place where secrets are masked in text parkstream passes on.

``redact(text, secrets)`` replaces every known secret with ``***`` in each form an
answer may carry it in, and, as a last guard for secrets it was not told about, the
value of every ``apiToken`` / ``api_token`` field::

    raw                         tok/é"x
    JSON-escaped                tok\\/\\u00e9\\"x   tok/é\\"x   (json.dumps with and without
                                                      ensure_ascii, PHP's \\/, \\uXXXX any case)
    URL-encoded                 tok%2F%C3%A9%22x  tok/%c3%a9%22x  (quote, quote_plus; %XX any case)

Forms are matched character by character, so a secret written half in one form and
half in another is masked too. ``redact_json`` does the same to every string (keys
included) of a parsed JSON value, in place, without recursion (a body nested as deep as
``json.loads`` allows is walked). Callers: the Controller client (answers quoted into
errors, replies), the gateway (bodies relayed to vendors), the log formatters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from schemas.controller import TOKEN_FIELDS

__all__ = ["MASK", "redact", "redact_json"]

MASK = "***"

# A token field in text (JSON, a query string, a log line), for secrets we were not told.
_TOKEN_FIELD = re.compile(
    r'("?(?:' + "|".join(map(re.escape, sorted(TOKEN_FIELDS))) + r')"?\s*[:=]\s*"?)([^",}\s]+)',
    re.IGNORECASE,
)

# JSON's two-character escapes (RFC 8259 section 7; ``\/`` is PHP's json_encode default).
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_JSON_SHORT |= {"\r": "\\r", "\t": "\\t"}


def _hex(digits: str) -> str:
    """A regex for hex ``digits`` in either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_forms(char: str) -> str:
    """A regex matching ``char`` in any of its forms (raw, JSON-escaped, URL-encoded)."""
    forms = [re.escape(char)]
    if char in _JSON_SHORT:
        forms.append(re.escape(_JSON_SHORT[char]))
    code = ord(char)
    if code > 0xFFFF:  # JSON escapes it as a UTF-16 surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(rf"\\u{_hex(f'{high:04x}')}\\u{_hex(f'{low:04x}')}")
    else:
        forms.append(rf"\\u{_hex(f'{code:04x}')}")
    forms.append("".join(f"%{_hex(f'{b:02x}')}" for b in char.encode("utf-8", "surrogatepass")))
    if char == " ":
        forms.append(r"\+")  # quote_plus
    # Longest first: alternatives are tried in order, and "%" must not stop short of "%25".
    return "(?:" + "|".join(sorted(forms, key=_form_length, reverse=True)) + ")"


def _form_length(regex: str) -> int:
    """How many characters a per-character alternative matches (they are fixed-length)."""
    return len(re.sub(r"\[[^]]*\]|\\.", "x", regex))


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    # Longest first: a secret that starts another is not masked in the other's place.
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join("".join(map(_char_forms, secret)) for secret in ordered))


def _known(secrets: Iterable[str]) -> re.Pattern[str] | None:
    return _pattern(tuple(secrets))


def redact(text: str, secrets: Iterable[str] = (), *, token_fields: bool = True) -> str:
    """``text`` with every form of each secret, and every token field's value, as ``***``.

    ``token_fields=False`` masks the given secrets only, so text that is JSON stays JSON
    (a guard masking ``"apiToken": null`` would not): the gateway's relay.
    """
    pattern = _known(secrets)
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _TOKEN_FIELD.sub(r"\1" + MASK, text) if token_fields else text


def redact_json(value: Any, secrets: Iterable[str]) -> Any:
    """Mask every form of each secret in every string of parsed JSON ``value``, in place.

    Returns the value (a new string when ``value`` itself is one). Token fields are not
    masked here: a reply's fields are data, and a secret we know is masked wherever it is.
    """
    pattern = _known(secrets)
    if pattern is None:
        return value
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            pairs = [
                (pattern.sub(MASK, k) if isinstance(k, str) else k, v) for k, v in item.items()
            ]
            item.clear()
            for key, child in pairs:
                item[key] = pattern.sub(MASK, child) if isinstance(child, str) else child
                if isinstance(child, dict | list):
                    stack.append(child)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, str):
                    item[index] = pattern.sub(MASK, child)
                elif isinstance(child, dict | list):
                    stack.append(child)
    return value
