"""A Controller that is not parkstream's sandbox: a real HTTP server that records every call.

It answers ``permits/push`` / ``update`` / ``delete`` with the documented success
body and keeps each request exactly as it arrived, so tests can check what the
Controller would have received (field names, values, token).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from parkstream.broker import free_port


@dataclass
class RecordedCall:
    path: str
    body: dict[str, Any]


@dataclass
class RecordingController:
    port: int = field(default_factory=free_port)
    calls: list[RecordedCall] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _answer(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.calls.append(RecordedCall(request.path, body))
        reference = body.get("referenceID") or str(uuid.uuid4())
        return web.json_response(
            {"status": "success", "reference_id": reference, "InternalReferenceID": reference}
        )

    async def start(self) -> RecordingController:
        app = web.Application()
        app.router.add_post("/api/{client}/v1/permits/{action}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
