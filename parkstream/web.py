"""The operational HTTP routes every parkstream server has: /healthz, /readyz, /metrics.

The gateway serves only ``/healthz`` on the port vendors reach and the three of them on an
operations port of its own (``add_health_route`` and ``add_ops_routes``); ``run_apps``
serves several applications, each on its own port, until cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

ReadyCheck = Callable[[], Awaitable[str | None]]


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

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    add_health_route(app)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def run_apps(*sites: tuple[web.Application, str, int]) -> None:
    """Serve each ``(app, host, port)`` until cancelled, then shut them down in order."""
    runners: list[web.AppRunner] = []
    try:
        for app, host, port in sites:
            runner = web.AppRunner(app, access_log=None)
            runners.append(runner)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


async def run_app(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` until cancelled, then shut it down cleanly."""
    await run_apps((app, host, port))
