"""When to try a Controller call again (pure, clock injected, no I/O).

``backoff_delay`` spaces the retries of one call; ``CircuitBreaker`` stops all
calls when failures persist, so an outage costs one probe every few seconds
instead of a storm of retries, and the backlog waits in Kafka.

    CLOSED --(failure_threshold transient failures in a row)--> OPEN
    OPEN   --(cooldown elapsed: one probe let through)--------> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED    HALF_OPEN --probe fails--> OPEN (cooldown doubles)
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

from foundation.settings import MAX_CIRCUIT_COOLDOWN_SECONDS

BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 30.0


def backoff_delay(
    attempt: int, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Full jitter over an exponential ceiling (base 0.2 s, cap 30 s); a server's
    ``Retry-After`` is a floor, never shortened.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    delay = (rng or random).uniform(0, ceiling)
    return max(delay, retry_after or 0.0)


class CircuitState(enum.IntEnum):
    """Values of the ``parkstream_circuit_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failure_threshold`` transient failures in a row; probes after a cooldown."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 2.0,
        max_cooldown_seconds: float = MAX_CIRCUIT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.base_cooldown = cooldown_seconds
        self.max_cooldown = max_cooldown_seconds
        self._clock = clock
        self.state = CircuitState.CLOSED
        self._failures = 0
        self._cooldown = cooldown_seconds
        self._opened_at = 0.0
        self._probe_out = False
        self.opened_count = 0

    def wait_seconds(self) -> float:
        """0 when a call may go now (and, half-open, claim the one probe); else how long to wait."""
        if self.state is CircuitState.CLOSED:
            return 0.0
        if self.state is CircuitState.OPEN:
            remaining = self._opened_at + self._cooldown - self._clock()
            if remaining > 0:
                return remaining
            self.state = CircuitState.HALF_OPEN
            self._probe_out = False
        if self._probe_out:
            # The probe is out; the others wait a moment for its answer.
            return min(self.base_cooldown, 0.5)
        self._probe_out = True
        return 0.0

    def release_probe(self) -> None:
        """The call that claimed the probe ended with no answer either way (it was given
        up): another call may probe. Without this a probe that never reports would keep
        the circuit half-open, and every call waiting, for good."""
        self._probe_out = False

    def record_success(self) -> None:
        self.state = CircuitState.CLOSED
        self._failures = 0
        self._cooldown = self.base_cooldown
        self._probe_out = False

    def record_failure(self) -> None:
        """A transient failure (timeout, connection error, 5xx, 429)."""
        if self.state is CircuitState.HALF_OPEN:
            self._cooldown = min(self.max_cooldown, self._cooldown * 2)
            self._open()
            return
        self._failures += 1
        if self.state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self.state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._probe_out = False
        self.opened_count += 1
