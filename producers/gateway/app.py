"""The gateway's applications: the vendors' one (``create_app``: its parts, routes and
middlewares, its clients opened and closed with it), the operations port's
(``create_ops_app``), and ``serve``, which runs both."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from foundation.kafka import AsyncProducer, BrokerUnavailable, ensure_topics
from foundation.settings import Settings
from foundation.web import add_health_route, add_ops_routes, bounded_reads, run_apps
from producers.gateway.answers import unknown_path
from producers.gateway.auth import Authenticator
from producers.gateway.observation import observe_requests
from producers.gateway.passthrough import PassThrough
from producers.gateway.producer import DELIVERY_TIMEOUT_MS, EventPublisher
from producers.gateway.push import Pushes
from producers.gateway.status import PermitStatus
from producers.openapi import openapi_document
from producers.references import ReferenceIssuer

log = logging.getLogger(__package__)


class Gateway:
    """The gateway's parts; one per aiohttp application."""

    def __init__(
        self,
        settings: Settings,
        producer: AsyncProducer | None = None,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    ) -> None:
        self.settings = settings
        # First: a bad grant stops the start before a producer exists.
        self.auth = Authenticator(settings)
        self.publisher = EventPublisher(settings, producer, delivery_timeout_ms=delivery_timeout_ms)
        references = ReferenceIssuer(settings.reference_secret)
        self.pushes = Pushes(settings, self.auth, self.publisher, references)
        self.pass_through = PassThrough(settings, self.auth)
        self.status = PermitStatus(settings, self.auth, references)

    async def close(self) -> None:
        """Close the Controller client; stop the gateway's own producer (after its
        outstanding deliveries)."""
        await self.pass_through.close()
        await self.publisher.close()


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def create_app(
    settings: Settings,
    producer: AsyncProducer | None = None,
    *,
    delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
) -> web.Application:
    """The gateway's aiohttp application.

    With ``producer`` given the caller owns its lifecycle; without, the gateway makes
    its own (replacing it if it dies) and closes it when the application stops.
    """
    gateway = Gateway(settings, producer, delivery_timeout_ms=delivery_timeout_ms)
    app = web.Application(
        client_max_size=settings.gateway_max_body_bytes,
        middlewares=[bounded_reads, observe_requests],
    )
    app[GATEWAY_KEY] = gateway

    async def http_session(app: web.Application) -> Any:
        gateway.status.http = aiohttp.ClientSession()
        yield
        await gateway.status.http.close()
        await gateway.close()

    app.cleanup_ctx.append(http_session)
    gateway.pushes.add_routes(app)
    gateway.pass_through.add_routes(app)
    gateway.status.add_routes(app)
    app.router.add_get("/openapi.json", openapi)
    add_health_route(app)
    app.router.add_post("/api/{tail:.*}", unknown_path)
    return app


async def openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI document of the routes, for this client code."""
    settings = request.app[GATEWAY_KEY].settings
    return web.json_response(openapi_document(settings.controller_client))


def create_ops_app(gateway: Gateway) -> web.Application:
    """The operations port's application: ``/healthz``, ``/readyz`` (the broker answers the
    gateway's producer) and ``/metrics``; nothing a vendor calls."""
    app = web.Application(middlewares=[bounded_reads])

    async def ready() -> str | None:
        try:
            await asyncio.to_thread(gateway.publisher.producer.list_topics, 2.0)
        except BrokerUnavailable as exc:
            return f"broker unreachable: {exc}"
        return None

    add_ops_routes(app, ready)
    return app


async def serve(settings: Settings) -> None:
    """Run the gateway until cancelled (``parkstream gateway``)."""
    app = create_app(settings)  # a bad grant stops the start before anything else
    if settings.uses_dev_reference_secret:
        log.warning(
            "PARKSTREAM_REFERENCE_SECRET is not set: reference ids are signed with the public "
            "development secret and prove nothing; set a secret of your own in production"
        )
    await asyncio.to_thread(ensure_topics, settings)
    log.info(
        'gateway listening url="http://%s:%d" ops_url="http://%s:%d" client="%s" vendors=%d '
        'framing="%s" grants="%s"',
        settings.gateway_host,
        settings.gateway_port,
        settings.gateway_host,
        settings.gateway_ops_port,
        settings.controller_client,
        len(app[GATEWAY_KEY].auth.vendors.names),
        app[GATEWAY_KEY].publisher.codec.framing,
        app[GATEWAY_KEY].auth.grants,
    )
    await run_apps(
        (app, settings.gateway_host, settings.gateway_port),
        (create_ops_app(app[GATEWAY_KEY]), settings.gateway_host, settings.gateway_ops_port),
        read_timeout=settings.gateway_read_timeout,
    )
