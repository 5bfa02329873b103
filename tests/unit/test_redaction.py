"""foundation.redaction: every form of a secret is masked, in one function everyone calls."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation import logs, redaction
from foundation.redaction import MASK, redact, redact_json

TOKEN = 'tok/3f9a"1c7e-é-secret ü+&=%😀'


def _percent_case(form: str, case: Any) -> str:
    return re.sub(r"%[0-9a-fA-F]{2}", lambda m: case(m.group(0)), form)


def _unicode_upper(form: str) -> str:
    return re.sub(r"\\u[0-9a-fA-F]{4}", lambda m: "\\u" + m.group(0)[2:].upper(), form)


def forms(token: str) -> dict[str, str]:
    """The token as an answer may carry it, by name."""
    ascii_json = json.dumps(token)[1:-1]
    plain_json = json.dumps(token, ensure_ascii=False)[1:-1]
    return {
        "raw": token,
        "json": ascii_json,
        "json-unicode-upper": _unicode_upper(ascii_json),
        "json-not-ascii": plain_json,
        "json-slash": ascii_json.replace("/", "\\/"),
        "json-not-ascii-slash": plain_json.replace("/", "\\/"),
        "quote": quote(token),
        "quote-no-safe": quote(token, safe=""),
        "quote-lower": _percent_case(quote(token, safe=""), str.lower),
        "quote-plus": quote_plus(token),
        "quote-plus-lower": _percent_case(quote_plus(token), str.lower),
    }


@pytest.mark.parametrize(("name", "form"), forms(TOKEN).items(), ids=forms(TOKEN).keys())
def test_every_form_of_the_token_is_masked(name: str, form: str) -> None:
    text = f"before {form} after"
    assert redact(text, [TOKEN]) == f"before {MASK} after"


def test_a_token_written_half_in_one_form_and_half_in_another_is_masked() -> None:
    half = len(TOKEN) // 2
    mixed = json.dumps(TOKEN[:half])[1:-1] + quote(TOKEN[half:], safe="")
    assert redact(f"<{mixed}>", [TOKEN]) == f"<{MASK}>"


def test_raw_letters_keep_their_case_only_hex_escapes_are_case_blind() -> None:
    assert redact("abcdefgh", ["ABCDEFGH"]) == "abcdefgh"
    assert redact("%2F%2f\\u00E9\\u00e9", ["//éé"]) == MASK


def test_the_longer_of_two_secrets_is_masked_whole() -> None:
    assert redact("secret-and-more", ["secret", "secret-and-more"]) == MASK


def test_token_fields_are_masked_even_for_a_token_not_given() -> None:
    assert redact('{"apiToken": "unknown-token", "plate": "PL8RDR"}') == (
        '{"apiToken": "***", "plate": "PL8RDR"}'
    )
    # A last guard masks too much rather than too little: the rest of the query goes too.
    assert redact("GET /x?api_token=unknown-token&plate=1") == "GET /x?api_token=***"


def test_without_the_field_guard_json_stays_json() -> None:
    text = '{"apiToken": null, "echo": "tok-123", "api_token": 5}'
    assert json.loads(redact(text, ["tok-123"], token_fields=False)) == {
        "apiToken": None,
        "echo": MASK,
        "api_token": 5,
    }


def test_empty_secrets_mask_nothing() -> None:
    assert redact("plain text", ["", ""]) == "plain text"


def test_the_log_formatters_call_the_one_function() -> None:
    assert logs.redact is redaction.redact
    record = logging.LogRecord("x", logging.INFO, __file__, 1, 'body={"apiToken":"t0k"}', (), None)
    assert "t0k" not in logs._TextFormatter().format(record)
    assert "t0k" not in logs._JsonFormatter().format(record)


def test_redact_json_masks_keys_and_values_in_place_at_any_depth() -> None:
    body: Any = {"status": "success", TOKEN: [{"echo": f"x{TOKEN}y"}], "n": 1}
    deep: Any = body
    for _ in range(5000):  # deeper than the interpreter's recursion limit
        deep = [deep]
    deep_body = {"wrap": deep}
    assert redact_json(deep_body, [TOKEN]) is deep_body
    assert body == {"status": "success", MASK: [{"echo": f"x{MASK}y"}], "n": 1}


def test_redact_json_of_a_string_is_the_masked_string() -> None:
    assert redact_json(f"a {TOKEN}", [TOKEN]) == f"a {MASK}"


TOKENS = st.text(
    st.characters(codec="utf-8", exclude_characters="*", exclude_categories=["Cs"]),
    min_size=1,
    max_size=50,
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)


@settings(max_examples=300)
@given(token=TOKENS, before=TEXT, after=TEXT, data=st.data())
def test_no_form_of_any_token_survives_in_any_text(
    token: str, before: str, after: str, data: st.DataObject
) -> None:
    all_forms = forms(token)
    name = data.draw(st.sampled_from(sorted(all_forms)), label="form")
    masked = redact(before + all_forms[name] + after, [token])
    survivors = {
        form
        for form in [
            *all_forms.values(),
            *(_percent_case(f, str.upper) for f in all_forms.values()),
            *(_percent_case(f, str.lower) for f in all_forms.values()),
        ]
        if form in masked
    }
    assert survivors == set()


@settings(max_examples=300)
@given(token=TOKENS, data=st.data())
def test_a_form_is_masked_whole_leaving_no_residue(token: str, data: st.DataObject) -> None:
    # A token ending in "%" echoed as "%25" once left "***25".
    all_forms = forms(token)
    form = all_forms[data.draw(st.sampled_from(sorted(all_forms)), label="form")]
    # "*" is in no token (TOKENS), so it bounds the form without being masked itself.
    assert redact(f"*{form}*", [token]) == f"*{MASK}*"
