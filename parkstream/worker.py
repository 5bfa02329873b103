"""The worker, assembled in one place: the planning agents (streams/), the dispatcher
(consumers/), the statistics, and the tasks that keep the Controller's lists fresh.

``build_worker(settings)`` makes every part from one ``Settings`` value and registers it
on the worker's Faust app by an explicit call; nothing is registered by importing a
module. ``run_worker`` builds it, creates missing topics, and runs it.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from typing import IO, Any

import faust

from consumers import dispatch, status, user_types
from consumers.dispatch import Dispatcher
from foundation.kafka import ensure_topics
from foundation.settings import PREFIX, Settings, SettingsError
from foundation.worker import lag
from foundation.worker.app import WorkerApp
from foundation.worker.ops import register_ops
from streams import stats, zones
from streams.planning import Planning, register_planning
from streams.stats import Stats


@dataclass(frozen=True)
class BuiltWorker:
    """The parts of one worker, for ``run_worker`` and for tests that look inside."""

    parts: WorkerApp
    planning: Planning
    dispatcher: Dispatcher
    stats: Stats

    @property
    def app(self) -> faust.App:
        return self.parts.app


def build_worker(settings: Settings) -> BuiltWorker:
    """Every agent, table, timer and web view of the worker, from ``settings``."""
    parts = WorkerApp(settings)
    register_ops(parts)
    planning = register_planning(parts)
    dispatcher = dispatch.register(parts)
    status.register(parts, dispatcher)
    user_types.register(parts, planning.user_types.update, dispatcher.controller)
    zone_stats = stats.register(parts, planning.zones)
    zones.register(parts, dispatcher.controller, zone_stats.labels)
    lag.register(parts)
    return BuiltWorker(parts, planning, dispatcher, zone_stats)


class Worker(faust.Worker):
    """Faust's worker, whose stop first settles the work under way (``WorkerApp.quiesce``).

    Calls under way finish and record their outcome, no new one starts, a retry waiting
    out an outage gives up at once: the stop takes at most the drain bound
    (``PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS`` + 5 s) plus Faust's own shutdown.
    """

    def __init__(self, built: BuiltWorker, **kwargs: Any) -> None:
        super().__init__(built.app, **kwargs)
        self._parts = built.parts

    async def _stop_on_signal(self, signal: Any) -> None:
        await self._parts.quiesce(f"signal {getattr(signal, 'name', signal)}")
        await super()._stop_on_signal(signal)


def claim_data_dir(settings: Settings) -> IO[bytes]:
    """Lock the worker's table files for this process; keep the returned file open.

    RocksDB lets one process open a table's files; a second worker on the same data dir
    would wait for them and then fail in the middle of a rebalance. It stops at start
    instead, with one line naming the variable.
    """
    directory = settings.data_dir / "worker"
    directory.mkdir(parents=True, exist_ok=True)
    lock = open(directory / ".lock", "wb")  # noqa: SIM115  (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SettingsError(
            f"{PREFIX}DATA_DIR={settings.data_dir}: another worker process uses it; "
            "give each worker a data dir of its own"
        ) from None
    return lock


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGTERM / Ctrl+C (graceful stop)."""
    claimed = claim_data_dir(settings)
    built = build_worker(settings)
    changelogs = [table.changelog_topic.get_topic_name() for table in built.app.tables.values()]
    ensure_topics(settings, also_check=changelogs)
    worker = Worker(built, loglevel=settings.log_level.lower(), quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    finally:
        claimed.close()
