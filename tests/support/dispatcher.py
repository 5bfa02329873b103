"""A dispatcher to drive command by command: a worker built from explicit settings, its
tables on acknowledging changelogs (``tests.support.tables``), a Controller that takes every
call (httpx's MockTransport) and a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
from faust.types import TP

from consumers.dispatch import Dispatcher
from consumers.sessions import session_key
from foundation.controller import ControllerClient
from foundation.settings import Settings
from foundation.worker.app import WorkerApp
from schemas.avro import codec
from schemas.controller import permit_success_body
from streams.plan import command_for_session_event
from tests.support.examples import session_event
from tests.support.tables import acknowledged_future, changelog_table

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
SESSION = "ps-ref-1"


class World:
    """A dispatcher of a worker built from explicit settings, its tables on acknowledging
    changelogs, a Controller that takes every call, and a clock the test moves."""

    def __init__(self, **settings: Any) -> None:
        self.now = START
        self.calls: list[str] = []
        self.dead_letters: list[dict[str, Any]] = []

        # Statuses to answer the next calls with (after applying them), then 200s.
        self.failures: list[int] = []

        def answer(request: httpx.Request) -> httpx.Response:
            self.calls.append(request.url.path.rsplit("/v1/", 1)[1])
            if self.failures:
                return httpx.Response(self.failures.pop(0), text="<html>busy</html>")
            return httpx.Response(200, json=permit_success_body(f"C-{len(self.calls)}"))

        client = ControllerClient(
            "http://controller.test", "OC-TOMA", "tok", transport=httpx.MockTransport(answer)
        )
        worker = WorkerApp(Settings(table_store="memory", **settings))
        worker.clock = lambda: self.now
        self.dispatcher = Dispatcher(worker, controller=client)
        self.dispatcher.journal = changelog_table(auto_ack=True, name="journal")
        self.journal_writes = self.dispatcher.journal.changelog_topic.sent
        self.dispatcher.sessions = changelog_table(auto_ack=True, name="sessions")

        async def send_dead_letter(message: Any, record: dict[str, Any], lease: Any) -> None:
            self.dead_letters.append(record)

        async def send_result(message: Any, result: dict[str, Any], lease: Any) -> Any:
            return acknowledged_future()

        worker.send_dead_letter = send_dead_letter  # type: ignore[method-assign]
        self.dispatcher._send_result = send_result  # type: ignore[method-assign]
        self.lease = worker.ownership.lease(TP("commands", 0))
        self.events = 0

    async def command(self, action: str, **fields: Any) -> None:
        self.events += 1
        event = session_event(
            **{
                "event_id": f"e-{self.events}",
                "session_id": SESSION,
                "action": action,
                "start_time": START,
                "end_time": END,
                **fields,
            }
        )
        command = command_for_session_event(event)
        message = SimpleNamespace(
            value=codec().encode("ControllerCommand", command),
            key=SESSION.encode(),
            topic="commands",
            partition=0,
            offset=self.events,
        )
        with self.lease.working():
            await self.dispatcher.apply_command(SimpleNamespace(message=message), self.lease)

    async def prune(self) -> None:
        await self.dispatcher._prune(self.lease, busy=lambda key: False)

    def session(self) -> dict[str, Any] | None:
        return self.dispatcher.sessions.get(session_key(SESSION))

    def journal(self) -> dict[str, Any]:
        return dict(self.dispatcher.journal.data)
