"""HTTP plumbing of parkstream's servers: the operational routes, and a bound on reading.

Routes: /healthz, /readyz, /metrics. The gateway serves only ``/healthz`` on the port vendors
reach and the three of them on an operations port of its own (``add_health_route`` and
``add_ops_routes``); ``run_apps`` serves several applications, each on its own port.

**Read bound.** aiohttp bounds neither the time to send a request's headers nor its body: a
client that stops halfway holds its connection (and a handler) indefinitely. ``run_apps``
with ``read_timeout`` serves through ``BoundedRequestHandler``, one deadline per request,
from its first byte (for a connection's first request: from the connection's opening) to
its last::

    deadline passes while ...          the server
    a request's head is incomplete     writes 408 (Connection: close) and closes
    nothing at all was sent yet        closes (a connection opened and left idle)
    a handler reads an unfinished body the read raises RequestReadTimeout; the
                                       bounded_reads middleware (or the handler) answers
                                       408 and the connection is closed
    a handler works on a complete body nothing: processing time is not the client's
    the connection idles, kept alive   nothing: no deadline runs between requests

The deadline stops when the handler returns; the next request's first byte starts a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[str | None]]


class RequestReadTimeout(TimeoutError):
    """A request's headers and body did not arrive within the read bound.

    A ``TimeoutError``, so aiohttp's lingering read of an unread body stops on it quietly.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request not received within {seconds:g} s")
        self.seconds = seconds


def read_timeout_body(seconds: float) -> dict[str, str]:
    """What a client that was too slow gets, with status 408."""
    return {
        "status": "error",
        "message": f"Request not received in time: send headers and body within {seconds:g} s.",
    }


def read_timeout_response(seconds: float) -> web.Response:
    """``408`` with ``Connection: close``: the rest of a stalled request is not waited for."""
    response = web.json_response(read_timeout_body(seconds), status=408)
    response.force_close()
    return response


def _raw_read_timeout_answer(seconds: float) -> bytes:
    body = json.dumps(read_timeout_body(seconds)).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body  # one write: no delayed-ACK wait (DESIGN.md)


class BoundedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with one read deadline per request (module docstring)."""

    __slots__ = ("_read_bytes_seen", "_read_deadline", "_read_timeout")

    def __init__(self, manager: Any, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._read_timeout = read_timeout
        self._read_deadline: asyncio.TimerHandle | None = None
        self._read_bytes_seen = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if data:
            if self._read_deadline is None:
                self._arm()  # the first byte of a kept-alive connection's next request
            self._read_bytes_seen = True
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.request_handled()
        super().connection_lost(exc)

    def request_handled(self) -> None:
        """The handler returned: this request's deadline no longer runs."""
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _arm(self) -> None:
        self._read_bytes_seen = False
        self._read_deadline = self._loop.call_later(self._read_timeout, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._read_deadline = None
        request = self._current_request
        if request is not None:
            if not request.content.is_eof():
                log.info("request body not received in time seconds=%g", self._read_timeout)
                request.content.set_exception(RequestReadTimeout(self._read_timeout))
            return
        waiting = self._waiter is not None and not self._waiter.done()
        if waiting and self._read_bytes_seen and self.transport is not None:
            log.info("request headers not received in time seconds=%g", self._read_timeout)
            self.transport.write(_raw_read_timeout_answer(self._read_timeout))
        self.force_close()


@web.middleware
async def bounded_reads(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer a ``RequestReadTimeout`` with 408; end the request's deadline with its handler."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except RequestReadTimeout as exc:
        return read_timeout_response(exc.seconds)
    finally:
        if isinstance(request.protocol, BoundedRequestHandler):
            request.protocol.request_handled()


class _BoundedSite(web.BaseSite):
    """A TCP site whose connections are ``BoundedRequestHandler``s."""

    __slots__ = ("_host", "_port", "_read_timeout")

    def __init__(self, runner: web.AppRunner, host: str, port: int, read_timeout: float) -> None:
        super().__init__(runner)
        self._host, self._port, self._read_timeout = host, port, read_timeout

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def protocol() -> BoundedRequestHandler:
            return BoundedRequestHandler(
                server, loop=loop, read_timeout=self._read_timeout, access_log=None
            )

        self._server = await loop.create_server(protocol, self._host, self._port)


async def _always_ready() -> str | None:
    return None


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_health_route(app: web.Application) -> None:
    """``GET /healthz``: the process answers."""
    app.router.add_get("/healthz", _healthz)


def add_ops_routes(
    app: web.Application,
    ready: ReadyCheck = _always_ready,
    registry: CollectorRegistry = REGISTRY,
) -> None:
    """Add the three routes. ``ready`` returns ``None`` when ready, else the reason it is not."""

    async def readyz(_: web.Request) -> web.Response:
        reason = await ready()
        if reason is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "reason": reason}, status=503)

    add_health_route(app)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))


async def run_apps(
    *sites: tuple[web.Application, str, int], read_timeout: float | None = None
) -> None:
    """Serve each ``(app, host, port)`` until cancelled, then shut them down in order.

    With ``read_timeout`` every request must arrive within that many seconds (module
    docstring); the apps must then have the ``bounded_reads`` middleware.
    """
    runners: list[web.AppRunner] = []
    try:
        for app, host, port in sites:
            runner = web.AppRunner(app, access_log=None)
            runners.append(runner)
            await runner.setup()
            if read_timeout is None:
                await web.TCPSite(runner, host, port).start()
            else:
                await _BoundedSite(runner, host, port, read_timeout).start()
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()
