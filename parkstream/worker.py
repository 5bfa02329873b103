"""Start the Faust worker: the planning agent (streams/) and the dispatcher (consumers/)."""

from __future__ import annotations

import importlib
from typing import Any

import faust

from parkstream.kafka import ensure_topics
from parkstream.settings import Settings

WORKER_MODULES = (
    "streams.app",
    "consumers.dispatch",
    "consumers.status",
    "consumers.user_types",
    "streams.stats",
    "consumers.zones",
    "streams.lag",
)


class Worker(faust.Worker):
    """Faust's worker, whose stop first settles the work under way (``streams.app.quiesce``).

    Calls under way finish and record their outcome, no new one starts, a retry waiting
    out an outage gives up at once: the stop takes at most the drain bound
    (``PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS`` + 5 s) plus Faust's own shutdown.
    """

    async def _stop_on_signal(self, signal: Any) -> None:
        from streams.app import quiesce

        await quiesce(f"signal {getattr(signal, 'name', signal)}")
        await super()._stop_on_signal(signal)


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGTERM / Ctrl+C (graceful stop)."""
    # Importing a module registers its agents, tables and web views on the Faust app.
    for module in WORKER_MODULES:
        importlib.import_module(module)
    from streams.app import app

    changelogs = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    ensure_topics(settings, also_check=changelogs)
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False)
    worker.execute_from_commandline()
