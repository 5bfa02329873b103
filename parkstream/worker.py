"""Start the Faust worker: the planning agent (streams/) and the dispatcher (consumers/)."""

from __future__ import annotations

import faust

from parkstream.kafka import ensure_topics
from parkstream.settings import Settings


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGTERM / Ctrl+C (graceful stop)."""
    ensure_topics(settings)
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    import consumers.dispatch  # noqa: F401  (registers the dispatch agent and its tables)
    import consumers.status  # noqa: F401  (registers /sessions/{reference_id})
    from streams.app import app

    worker = faust.Worker(
        app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False
    )
    worker.execute_from_commandline()
