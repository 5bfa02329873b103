"""The stall watchdog: a worker that makes no progress while it has work does not stay up.

A worker that waits forever (a broker that stops answering, a bug in a library it uses, a
lock never released) looks healthy from outside: the process runs, the group keeps it,
its partitions never move. So the worker watches itself::

    work      records delivered and not settled, consumer lag on its partitions, a
              rebalance under way
    progress  a record settled, a Controller call started or ended (an outage still
              probes), table recovery reading on

    no work                                           -> fine (idle)
    work, progress within PARKSTREAM_WORKER_STALL_SECONDS -> fine
    work, no progress for PARKSTREAM_WORKER_STALL_SECONDS -> stalled
    the event loop stops answering for as long          -> stalled (a blocked loop reports nothing)

Stalled, it logs one ERROR line saying what work waits and since when, writes the stack
of every task and thread to the log, and exits with ``EXIT_STALLED`` (70) at once: no
graceful stop, which could wait on the very thing that stalled. Its partitions move to
the other workers (Kubernetes restarts it) and the journal settles what was in flight,
as after any crash. ``parkstream_worker_seconds_without_progress`` shows the wait as it
grows; the alert ``ParkstreamWorkerStalled`` fires from it.

``StallClock`` is the rule as plain code with the clock injected; ``Watchdog`` runs it:
a one-second timer on the event loop, and a thread that acts, since a stalled loop may
never run the timer again.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

log = logging.getLogger(__name__)

EXIT_STALLED = 70  # EX_SOFTWARE

SECONDS_WITHOUT_PROGRESS = Gauge(
    "parkstream_worker_seconds_without_progress",
    "Seconds the worker has had work (records in hand, lag, a rebalance) without progress; "
    "0 when idle. At PARKSTREAM_WORKER_STALL_SECONDS the worker exits with code 70.",
)
WORK_PENDING = Gauge(
    "parkstream_worker_work_pending",
    "Work the stall watchdog sees: records in hand plus consumer lag (1 during a rebalance).",
)


class StallClock:
    """How long the worker has had work without progress (pure; the clock is injected)."""

    def __init__(self, limit_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_seconds = limit_seconds
        self._clock = clock
        self._since = clock()

    def progressed(self) -> None:
        """Something moved on (a record settled, a call made, recovery read on)."""
        self._since = self._clock()

    def observe(self, has_work: bool) -> float:
        """Seconds without progress while there was work; idle time does not count."""
        now = self._clock()
        if not has_work:
            self._since = now
        return now - self._since

    def stalled(self, has_work: bool) -> bool:
        return self.observe(has_work) >= self.limit_seconds


WorkProbe = Callable[[], int]


class Watchdog:
    """Runs a ``StallClock`` for the worker; exits the process when it stalls."""

    def __init__(
        self,
        limit_seconds: float,
        exit: Callable[[int], None] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = StallClock(limit_seconds, clock)
        self._now = clock
        self._probes: dict[str, WorkProbe] = {}
        self._diagnostics: dict[str, Callable[[], object]] = {}
        self._exit = exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_seen = clock()
        self._work: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def progressed(self) -> None:
        self.clock.progressed()

    def add_work(self, name: str, probe: WorkProbe) -> None:
        """``probe()`` is how much work of kind ``name`` waits (records, lag...)."""
        self._probes[name] = probe

    def add_diagnostic(self, name: str, describe: Callable[[], object]) -> None:
        """``describe()`` is logged when the worker stalls (state behind the stall)."""
        self._diagnostics[name] = describe

    def diagnostics(self) -> str:
        lines = []
        for name, describe in self._diagnostics.items():
            try:
                lines.append(f"{name}: {describe()}")
            except Exception as exc:  # diagnostics only
                lines.append(f"{name}: unavailable ({type(exc).__name__}: {exc})")
        return "\n".join(lines)

    def work(self) -> dict[str, int]:
        """The work each probe sees now (a probe that fails counts as none)."""
        found = {}
        for name, probe in self._probes.items():
            try:
                found[name] = int(probe())
            except Exception:  # a probe must never take the watchdog down
                found[name] = 0
        return found

    def tick(self) -> float:
        """Called on the event loop every second: look at the work, update the gauges."""
        self._loop_seen = self._now()
        self._work = self.work()
        pending = sum(self._work.values())
        seconds = self.clock.observe(pending > 0)
        WORK_PENDING.set(pending)
        SECONDS_WITHOUT_PROGRESS.set(round(seconds, 1))
        return seconds

    def verdict(self) -> str | None:
        """Why the worker is stalled, or ``None`` (called from the watching thread)."""
        limit = self.clock.limit_seconds
        silent = self._now() - self._loop_seen
        if silent >= limit:
            return f"the event loop has not answered for {silent:.0f} s"
        pending = {name: n for name, n in self._work.items() if n}
        if pending and self.clock.stalled(True):
            shown = ",".join(f"{name}={n}" for name, n in sorted(pending.items()))
            return f"no progress for {self.clock.observe(True):.0f} s with work pending {shown}"
        return None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the watching thread (the caller runs ``tick()`` every second on ``loop``)."""
        self._loop = loop
        self._loop_seen = self._now()
        self.clock.progressed()
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(1.0):
            reason = self.verdict()
            if reason is not None:
                self._die(reason)
                return

    def _die(self, reason: str) -> None:
        log.error(
            'worker stalled, exiting reason="%s" limit_seconds=%.0f exit_code=%d',
            reason,
            self.clock.limit_seconds,
            EXIT_STALLED,
        )
        log.error("state of the stalled worker:\n%s", self.diagnostics())
        log.error("stacks of the stalled worker:\n%s", stacks(self._loop))
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        self._exit(EXIT_STALLED)


def stacks(loop: asyncio.AbstractEventLoop | None) -> str:
    """Every thread's stack and every asyncio task's, as text (best effort, for the log)."""
    out = io.StringIO()
    try:
        with tempfile.TemporaryFile() as raw:  # faulthandler needs a real file descriptor
            faulthandler.dump_traceback(file=raw, all_threads=True)
            raw.seek(0)
            out.write(raw.read().decode(errors="replace"))
    except Exception as exc:  # pragma: no cover - diagnostics only
        out.write(f"(thread stacks unavailable: {exc})\n")
    if loop is not None:
        try:
            tasks = list(asyncio.all_tasks(loop))
        except RuntimeError:  # the set changed while copied: try once more
            tasks = list(asyncio.all_tasks(loop))
        for task in tasks:
            out.write(f"\n--- {task!r}\n")
            try:
                task.print_stack(limit=12, file=out)
            except Exception as exc:  # pragma: no cover - diagnostics only
                out.write(f"(stack unavailable: {exc})\n")
    return out.getvalue()
