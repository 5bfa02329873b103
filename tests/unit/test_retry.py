import random

from hypothesis import given
from hypothesis import strategies as st

from consumers.retry import BACKOFF_CAP_SECONDS, CircuitBreaker, CircuitState, backoff_delay
from tests.support.clock import ManualClock


@given(st.integers(1, 60), st.integers(0, 2**32))
def test_backoff_stays_under_an_exponential_ceiling_capped_at_30s(attempt, seed):
    delay = backoff_delay(attempt, None, random.Random(seed))
    assert 0 <= delay <= min(BACKOFF_CAP_SECONDS, 0.2 * 2 ** (attempt - 1))


@given(st.integers(1, 60), st.floats(0, 120))
def test_retry_after_is_a_floor(attempt, retry_after):
    assert backoff_delay(attempt, retry_after) >= retry_after


def test_the_circuit_opens_after_the_threshold_of_failures_in_a_row():
    breaker = CircuitBreaker(failure_threshold=3, clock=ManualClock())
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.wait_seconds() > 0


def test_a_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=3, clock=ManualClock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED


def test_after_the_cooldown_exactly_one_probe_goes():
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2, clock=clock)
    breaker.record_failure()
    clock.now = 2.0
    assert breaker.wait_seconds() == 0
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.wait_seconds() > 0  # a second caller waits for the probe's answer


def test_a_good_probe_closes_the_circuit():
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2, clock=clock)
    breaker.record_failure()
    clock.now = 2.0
    breaker.wait_seconds()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.wait_seconds() == 0


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap():
    clock = ManualClock()
    breaker = CircuitBreaker(
        failure_threshold=1, cooldown_seconds=2, max_cooldown_seconds=5, clock=clock
    )
    breaker.record_failure()
    for expected in (4, 5, 5):
        clock.now += 100
        assert breaker.wait_seconds() == 0
        breaker.record_failure()
        assert breaker.state is CircuitState.OPEN
        assert breaker.wait_seconds() == expected
