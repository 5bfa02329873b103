"""Start the Faust worker: the planning agent (streams/) and the dispatcher (consumers/)."""

from __future__ import annotations

import importlib

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


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGTERM / Ctrl+C (graceful stop)."""
    ensure_topics(settings)
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    # Importing a module registers its agents, tables and web views on the Faust app.
    for module in WORKER_MODULES:
        importlib.import_module(module)
    from streams.app import app

    worker = faust.Worker(
        app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False
    )
    worker.execute_from_commandline()
