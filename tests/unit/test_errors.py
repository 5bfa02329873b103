"""foundation.errors: the tree, and what each branch tells its caller."""

import pytest

from foundation import errors
from foundation.errors import (
    ControllerAnswerUnreadable,
    ControllerConnectionError,
    ControllerRateLimited,
    ControllerRejected,
    ControllerServerError,
    ControllerTimeout,
    ParkstreamError,
    PermanentError,
    RejectedAtEdge,
    SchemaViolation,
    TransientError,
    UndecodableRecord,
)
from schemas.controller import ERROR_MESSAGES

TRANSIENT = [
    ControllerTimeout("t"),
    ControllerConnectionError("c"),
    ControllerServerError(502),
    ControllerRateLimited(429, 1.5),
    ControllerAnswerUnreadable("HTML page", status_code=200, snippet="<html>"),
]
PERMANENT = [
    ControllerRejected(9009, "Record not found."),
    SchemaViolation("plate missing", error_code=9006),
    UndecodableRecord("bad magic byte"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_are_retried_not_dead_lettered(error):
    assert isinstance(error, TransientError)
    assert isinstance(error, ParkstreamError)
    assert error.transient and not error.permanent
    assert not isinstance(error, PermanentError)
    assert hasattr(error, "retry_after")


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors_are_dead_lettered_with_a_reason_and_code(error):
    assert isinstance(error, PermanentError)
    assert isinstance(error, ParkstreamError)
    assert error.permanent and not error.transient
    assert not isinstance(error, TransientError)
    assert error.reason
    assert error.error_code is None or isinstance(error.error_code, int)


def test_rejected_at_edge_is_neither_transient_nor_permanent():
    error = RejectedAtEdge(9006, 400)
    assert isinstance(error, ParkstreamError)
    assert not isinstance(error, TransientError | PermanentError)
    assert not error.transient and not error.permanent
    assert (error.error_code, error.http_status) == (9006, 400)


def test_rejected_at_edge_body_is_the_controller_error_shape():
    error = RejectedAtEdge(9003, 400, message="Could not parse the request.")
    assert error.body() == {"ErrorCode": 9003, "ErrorMessage": "Could not parse the request."}


def test_rejected_at_edge_body_defaults_to_the_documented_message():
    assert RejectedAtEdge(9006, 422).body() == {
        "ErrorCode": 9006,
        "ErrorMessage": ERROR_MESSAGES[9006],
    }


def test_controller_rejected_carries_the_controller_code_and_message():
    error = ControllerRejected(9009, "Record not found.")
    assert error.error_code == 9009
    assert error.reason == error.message == "Record not found."
    assert str(error) == "[9009] Record not found."


def test_rate_limited_is_not_a_server_error():
    # A 429 is the server asking us to slow down, not the server failing.
    error = ControllerRateLimited(429, 2.0)
    assert not isinstance(error, ControllerServerError)
    assert (error.status_code, error.retry_after) == (429, 2.0)
    assert "retry after 2 s" in str(error)


def test_server_error_keeps_its_status_and_has_no_retry_after_by_default():
    error = ControllerServerError(500)
    assert error.status_code == 500
    assert error.retry_after is None
    assert "500" in str(error)


def test_docstring_draws_every_error_class():
    names = [name for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    for name in names:
        assert name in errors.__doc__, name


def test_an_unreadable_answer_is_a_lost_answer_that_keeps_its_status_and_snippet():
    # A maintenance page served with 200 may hide a committed push: retry, never dead-letter.
    error = ControllerAnswerUnreadable("HTML page", status_code=200, snippet="<html>down</html>")
    assert isinstance(error, TransientError) and not isinstance(error, PermanentError)
    assert (error.status_code, error.snippet, error.retry_after) == (200, "<html>down</html>", None)


def test_unexpected_answer_is_gone_from_the_tree():
    # Its permanence was the defect (issue 11, item 6); no name may bring it back.
    assert not hasattr(errors, "UnexpectedAnswer")
