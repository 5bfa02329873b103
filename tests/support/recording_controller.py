"""A Controller that is not parkstream's sandbox: a real HTTP server that records every call.

It answers ``permits/push`` / ``update`` / ``delete``, ``vehicles/push`` and
``profiles/push`` with the documented success bodies, and the read endpoints
(``permits/stats``, ``profiles/types/list``, ``violations/send_overdue_to_collections``,
``validate/plate``) with documented example answers. It keeps each request exactly as
it arrived, so tests can check what the Controller would have received (field names,
values, token).

``start()`` serves on the running event loop (async tests); ``in_thread()`` serves
on a loop of its own, for tests that call it through blocking clients.

``WorkerSessions`` is the worker's ``GET /sessions/{reference_id}`` as the gateway
sees it: 404 until a test records a session state.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from foundation.broker import free_port
from schemas.controller import (
    plate_validation_body,
    profile_success_body,
    stats_body,
    user_types_body,
    vehicle_success_body,
)


@dataclass
class RecordedCall:
    path: str
    body: dict[str, Any]


class _Server:
    """An aiohttp app on a port, on the current loop or on a thread of its own."""

    port: int
    _runner: web.AppRunner | None

    def _app(self) -> web.Application:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Any:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @contextmanager
    def in_thread(self) -> Iterator[Any]:
        """Serve from a background thread with its own event loop until the block ends."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        thread.start()
        if not ready.wait(10):
            raise TimeoutError(f"{type(self).__name__} did not start")
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


@dataclass
class RecordingController(_Server):
    port: int = field(default_factory=free_port)
    calls: list[RecordedCall] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(101))

    def calls_to(self, endpoint: str) -> list[RecordedCall]:
        """The recorded calls of one endpoint (``"vehicles/push"``), in arrival order."""
        return [call for call in self.calls if call.path.endswith(f"/v1/{endpoint}")]

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = json.loads(await request.read())
        self.calls.append(RecordedCall(request.path, body))
        return body

    async def _answer(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        reference = body.get("referenceID") or str(uuid.uuid4())
        return web.json_response(
            {"status": "success", "reference_id": reference, "InternalReferenceID": reference}
        )

    async def _vehicle(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(vehicle_success_body(next(self._ids)))

    async def _profile(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(profile_success_body(next(self._ids)))

    async def _stats(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(stats_body([("standard", "zone1", 4), ("temp", "zone1", 35)]))

    async def _user_types(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(
            user_types_body([{"id": 1, "type_name": "Full Time Student", "ext_info": "Student"}])
        )

    async def _overdue(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"records": [], "state": {"version": "recording"}})

    async def _plate(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        return web.json_response(plate_validation_body(str(body.get("plate", ""))))

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{client}/v1/permits/stats", self._stats)
        app.router.add_post("/api/{client}/v1/permits/{action}", self._answer)
        app.router.add_post("/api/{client}/v1/vehicles/push", self._vehicle)
        app.router.add_post("/api/{client}/v1/profiles/push", self._profile)
        app.router.add_post("/api/{client}/v1/profiles/types/list", self._user_types)
        app.router.add_post(
            "/api/{client}/v1/violations/send_overdue_to_collections", self._overdue
        )
        app.router.add_post("/api/v1/validate/plate", self._plate)
        return app


@dataclass
class WorkerSessions(_Server):
    """The worker's session-status endpoint: 404 unless ``sessions`` has the id."""

    port: int = field(default_factory=free_port)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def record(self, reference_id: str, state: str, **details: Any) -> None:
        self.sessions[reference_id] = {
            "reference_id": reference_id,
            "state": state,
            "controller_reference_id": None,
            "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat(),
            "error_code": None,
            "error_message": None,
            **details,
        }

    async def _session(self, request: web.Request) -> web.Response:
        reference_id = request.match_info["reference_id"]
        self.asked.append(reference_id)
        state = self.sessions.get(reference_id)
        if state is None:
            return web.json_response({"reference_id": reference_id, "state": None}, status=404)
        return web.json_response(state)

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/sessions/{reference_id}", self._session)
        return app
