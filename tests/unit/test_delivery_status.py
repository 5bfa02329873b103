"""producers.gateway.delivery_status: what a vendor is told, never the Controller's own text."""

from __future__ import annotations

import pytest

from producers.gateway import delivery_status
from schemas.controller import ERROR_MESSAGES

REF = "ps-3f9a0c1b2d4e5f607182-9c8b7a6d5e4f30211a0b"
RAW = '<html>Blocked: apiToken=controller-secret-token \\"tok\\/x\\" at 10.1.2.3</html>'


def _dead(code: object, message: object = RAW) -> dict[str, object]:
    return {
        "state": "dead_lettered",
        "at": "2026-01-02T03:04:05+00:00",
        "error_code": code,
        "error_message": message,
    }


@pytest.mark.parametrize("code", sorted(ERROR_MESSAGES))
def test_a_dead_lettered_permit_carries_the_documented_message_of_its_code(code: int) -> None:
    status = delivery_status(REF, _dead(code))
    assert (status["error_code"], status["error_message"]) == (code, ERROR_MESSAGES[code])


@pytest.mark.parametrize("code", [None, 9999, "9006", True, 9006.0])
def test_without_a_documented_code_the_vendor_gets_no_message(code: object) -> None:
    status = delivery_status(REF, _dead(code))
    assert (status["error_code"], status["error_message"]) == (None, None)


def test_the_controllers_text_never_reaches_the_vendor() -> None:
    status = delivery_status(REF, _dead(9002))
    assert RAW not in str(status)
    assert "controller-secret-token" not in str(status)
