"""What became of a parking session, served by the worker that owns its key.

``GET /sessions/{reference_id}`` answers from the ``sessions`` table; a request
that reaches a worker not owning that key is forwarded to the one that does
(Faust's table routing). 404 means no outcome is recorded yet.
"""

from __future__ import annotations

from typing import Any

from consumers.dispatch import Dispatcher
from consumers.sessions import session_key
from foundation.worker.app import WorkerApp


def session_status(reference_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a session's state (documented in docs/delivery.md)."""
    return {
        "reference_id": reference_id,
        "state": state.get("state"),
        "controller_reference_id": state.get("controller_ref"),
        "at": state.get("at"),
        "error_code": state.get("error_code"),
        "error_message": state.get("error_message"),
    }


def register(worker: WorkerApp, dispatcher: Dispatcher) -> None:
    """Add ``GET /sessions/{reference_id}``, routed to the worker owning the key."""
    sessions = dispatcher.sessions

    async def get_session(web: Any, request: Any, reference_id: str) -> Any:
        state = sessions.get(session_key(reference_id))
        if state is None:
            return web.json({"reference_id": reference_id, "state": None}, status=404)
        return web.json(session_status(reference_id, state))

    routed = worker.app.table_route(table=sessions, match_info="reference_id")(get_session)
    worker.app.page("/sessions/{reference_id}")(routed)
