"""The sandbox HTTP server: the OPS-COM Controller API plus sandbox-only controls.

    POST /api/{client}/v1/<endpoint>, POST /api/v1/validate/plate   the Controller API
    GET  /healthz, /readyz, /metrics                                  operations
    /_sandbox/...                                                     faults, journal, state

See docs/sandbox.md. Entry points: :func:`create_app` and :func:`serve`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY
from prometheus_client.aiohttp import make_aiohttp_handler

from sandbox import metrics
from sandbox.config import SandboxConfig
from sandbox.controller import FakeController
from sandbox.faults import NO_FAULT, Decision, FaultConfig, FaultInjector
from sandbox.journal import Journal, mask_body
from sandbox.state import Store
from schemas.controller import (
    ENDPOINTS,
    ContractError,
    Endpoint,
    format_time,
    normalize_client_code,
    normalize_plate,
    parse_body,
    parse_time,
    resolve_path,
)

__all__ = ["SandboxConfig", "create_app", "serve"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
HANG_POLL_S = 0.05


@dataclass
class Outcome:
    """One answer, before it is written: a JSON ``body``, or an ``html`` page (a fault)."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    error_code: int | None = None
    html: str | None = None


class Sandbox:
    """The running sandbox: config, records, faults and journal of one app."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.controller = FakeController(self.store, config)
        self.faults = FaultInjector(config.faults)
        self.journal = Journal(config.journal_size)
        self.stopping = asyncio.Event()
        self._client = normalize_client_code(config.client)
        self._token = config.api_token.encode()

    # the Controller API -------------------------------------------------------------

    def authenticate(self, client: str | None, token: str) -> None:
        """9002 for a token that is not ours, 9034 for our token under another client."""
        if not hmac.compare_digest(token.encode(), self._token):
            raise ContractError(9002, detail="unknown token")
        if client is None or normalize_client_code(client) != self._client:
            raise ContractError(9034, detail="token belongs to another client")

    def error_outcome(self, error: ContractError, endpoint: Endpoint | None) -> Outcome:
        body = endpoint.error_body(error) if endpoint is not None else error.body()
        status = self.config.error_http_status or error.http_status
        return Outcome(status, body, error_code=error.code)

    def process(
        self, endpoint: Endpoint, path_client: str | None, raw: bytes, content_type: str | None
    ) -> tuple[Outcome, Any]:
        """Answer one call; also returns the parsed body (None if it did not parse)."""
        parsed: Any = None
        try:
            parsed = parse_body(raw, content_type)
            body_client, token = endpoint.credentials(parsed)
            self.authenticate(path_client if endpoint.client_in_path else body_client, token)
            checked = endpoint.check(parsed)
            return Outcome(200, self.controller.call(endpoint.name, checked)), parsed
        except ContractError as error:
            return self.error_outcome(error, endpoint), parsed

    def failure_outcome(self, endpoint: Endpoint) -> Outcome:
        answer = self.faults.failure_answer(endpoint)
        status = answer.status
        if answer.error_code is not None and self.faults.config.failure_status is None:
            status = self.config.error_http_status or status
        return Outcome(status, answer.body, answer.headers, answer.error_code, answer.html)

    async def hang(self, request: web.Request) -> None:
        """Never answer: return once the client has gone or the server is stopping."""
        while not self.stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(HANG_POLL_S)

    def reset(self) -> None:
        self.controller.reset()
        self.journal.clear()
        self.faults.set(self.config.faults)


SANDBOX = web.AppKey("sandbox", Sandbox)


def _endpoint_named_in(path: str) -> Endpoint | None:
    """The endpoint a client-less path names (for journal and metrics of a 9000)."""
    return ENDPOINTS.get(path.strip("/").partition("/v1/")[2])


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


async def handle_api(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[SANDBOX]
    started = time.perf_counter()
    received = datetime.now(UTC)
    endpoint: Endpoint | None = None
    decision: Decision = NO_FAULT
    outcome: Outcome | None = None
    parsed: Any = None
    raw = b""
    try:
        try:
            endpoint, path_client = resolve_path(request.path)
            client_error = None
        except LookupError:
            outcome = Outcome(404, {"message": "Not Found"})
        except ContractError as error:
            endpoint, path_client, client_error = _endpoint_named_in(request.path), None, error
            if endpoint is None:
                outcome = sandbox.error_outcome(error, None)
        if outcome is None and endpoint is not None:
            try:
                raw = await request.read()
                too_large = False
            except web.HTTPRequestEntityTooLarge:
                too_large = True
            if request.method != "POST":
                outcome = Outcome(405, {"message": "Method Not Allowed"}, {"Allow": "POST"})
            elif client_error is not None:
                outcome = sandbox.error_outcome(client_error, endpoint)
            elif too_large:
                outcome = sandbox.error_outcome(ContractError(9003, detail="too large"), endpoint)
                outcome.status = 413
            else:
                decision = sandbox.faults.decide(endpoint.name)
                outcome, parsed = await _answer(
                    sandbox, request, endpoint, path_client, raw, decision
                )
    finally:
        # Also runs when a hung call is cancelled by its client going away.
        _record(sandbox, request, received, started, endpoint, decision, outcome, parsed, raw)
    if outcome is None:
        # A hang ended: the client is gone, or the server stops and drops the connection.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)
    if outcome.html is not None:
        return web.Response(
            text=outcome.html,
            status=outcome.status,
            headers=outcome.headers,
            content_type="text/html",
            charset="utf-8",
        )
    return web.json_response(outcome.body, status=outcome.status, headers=outcome.headers)


async def _answer(
    sandbox: Sandbox,
    request: web.Request,
    endpoint: Endpoint,
    path_client: str | None,
    raw: bytes,
    decision: Decision,
) -> tuple[Outcome | None, Any]:
    """The call's outcome with its faults applied; None when it hung."""
    if decision.fault is not None:
        metrics.FAULTS.labels(endpoint.name, decision.fault).inc()
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    outcome: Outcome | None = None
    parsed: Any = None
    if decision.after_apply or not (decision.hang or decision.fail):
        outcome, parsed = sandbox.process(
            endpoint, path_client, raw, request.headers.get("Content-Type")
        )
    if decision.hang:
        await sandbox.hang(request)
        return None, parsed
    if decision.fail:
        return sandbox.failure_outcome(endpoint), parsed
    return outcome, parsed


def _record(
    sandbox: Sandbox,
    request: web.Request,
    received: datetime,
    started: float,
    endpoint: Endpoint | None,
    decision: Decision,
    outcome: Outcome | None,
    parsed: Any,
    raw: bytes,
) -> None:
    elapsed = time.perf_counter() - started
    name = endpoint.name if endpoint is not None else "unknown"
    status = "hang" if outcome is None else str(outcome.status)
    error_code = "" if outcome is None or outcome.error_code is None else str(outcome.error_code)
    metrics.REQUESTS.labels(name, status, error_code).inc()
    metrics.REQUEST_DURATION.labels(name).observe(elapsed)
    if parsed is None and raw:
        parsed = _json_or_none(raw)
    sandbox.journal.record(
        time=received.isoformat(),
        method=request.method,
        path=request.path,
        endpoint=endpoint.name if endpoint is not None else None,
        status=None if outcome is None else outcome.status,
        error_code=None if outcome is None else outcome.error_code,
        fault=decision.fault,
        duration_ms=round(elapsed * 1000, 3),
        body=mask_body(parsed, raw, (sandbox.config.api_token,)),
        answer=None if outcome is None else (outcome.html or outcome.body),
    )
    logger.debug(
        'sandbox_call endpoint="%s" status="%s" error_code="%s" fault="%s" duration_ms=%.3f',
        name,
        status,
        error_code,
        decision.fault or "",
        elapsed * 1000,
    )


# operations ---------------------------------------------------------------------------


async def handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_readyz(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    if sandbox.stopping.is_set() or not sandbox.store.ping():
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ready"})


handle_metrics = make_aiohttp_handler(REGISTRY)


# sandbox controls ------------------------------------------------------------------


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _json_object(request: web.Request) -> Mapping[str, Any]:
    try:
        data = json.loads(await request.read() or b"{}")
    except (ValueError, RecursionError, web.HTTPRequestEntityTooLarge):
        raise ValueError("body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


async def handle_faults(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    if request.method in ("PUT", "PATCH"):
        try:
            data = await _json_object(request)
            base = sandbox.faults.config if request.method == "PATCH" else FaultConfig()
            sandbox.faults.set(FaultConfig.from_mapping(data, base))
        except ValueError as exc:
            return _bad_request(str(exc))
        logger.info("sandbox_faults_set faults=%s", json.dumps(sandbox.faults.config.to_dict()))
    elif request.method == "DELETE":
        sandbox.faults.set(FaultConfig())
        logger.info("sandbox_faults_cleared")
    return web.json_response(sandbox.faults.snapshot())


async def handle_journal(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    if request.method == "DELETE":
        sandbox.journal.clear()
        return web.json_response({"entries": []})
    try:
        since = int(request.query.get("since", "0"))
        limit_raw = request.query.get("limit")
        limit = None if limit_raw is None else int(limit_raw)
    except ValueError:
        return _bad_request("since and limit must be integers")
    endpoint = request.query.get("endpoint")
    entries = sandbox.journal.entries(since=since, limit=limit, endpoint=endpoint)
    return web.json_response({"entries": entries})


async def handle_reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    logger.info("sandbox_reset")
    return web.json_response({"status": "reset"})


async def handle_permits(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    permits = sandbox.store.permits()
    plate = request.query.get("plate")
    reference_id = request.query.get("reference_id")
    selected = [
        {**p, "deleted": bool(p["deleted"])}
        for p in permits
        if (plate is None or p["plate_norm"] == normalize_plate(plate))
        and reference_id in (None, p["reference_id"])
    ]
    return web.json_response({"permits": selected})


async def handle_state(request: web.Request) -> web.Response:
    store = request.app[SANDBOX].store
    return web.json_response(
        {
            "counts": store.counts(),
            "permits": [{**p, "deleted": bool(p["deleted"])} for p in store.permits()],
            "vehicles": store.vehicles(),
            "profiles": store.profiles(),
            "violations": store.violations(),
        }
    )


async def handle_violations(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    try:
        data = await _json_object(request)
        records = data.get("records")
        if not isinstance(records, list):
            raise ValueError("records must be a list of violation objects")
        ids = sandbox.controller.add_violations(records)
    except ValueError as exc:
        return _bad_request(str(exc))
    return web.json_response({"ids": ids})


async def handle_plates(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    try:
        sandbox.controller.set_plate_notes(await _json_object(request))
    except ValueError as exc:
        return _bad_request(str(exc))
    return web.json_response({"status": "ok"})


async def handle_clock(request: web.Request) -> web.Response:
    controller = request.app[SANDBOX].controller
    if request.method == "PUT":
        try:
            data = await _json_object(request)
            raw = data.get("now")
            if raw is not None and not isinstance(raw, str):
                raise ValueError("now must be a string or null")
            controller.fixed_now = None if raw is None else parse_time(raw, lenient=True)
        except ValueError as exc:
            return _bad_request(f"{exc}; now is Y-m-d\\TH:i:s UTC (an offset is allowed)")
    fixed = controller.fixed_now
    return web.json_response(
        {
            "now": format_time(controller.now()),
            "fixed": None if fixed is None else format_time(fixed),
        }
    )


# app ---------------------------------------------------------------------------------


def create_app(settings: SandboxConfig) -> web.Application:
    """The sandbox application; its records live as long as the app (or the SQLite file)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    sandbox = Sandbox(settings)
    app[SANDBOX] = sandbox

    async def on_shutdown(_: web.Application) -> None:
        sandbox.stopping.set()

    async def on_cleanup(_: web.Application) -> None:
        sandbox.store.close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/api/{tail:.*}", handle_api)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", handle_metrics)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        app.router.add_route(method, "/_sandbox/faults", handle_faults)
    app.router.add_get("/_sandbox/journal", handle_journal)
    app.router.add_delete("/_sandbox/journal", handle_journal)
    app.router.add_post("/_sandbox/reset", handle_reset)
    app.router.add_get("/_sandbox/permits", handle_permits)
    app.router.add_get("/_sandbox/state", handle_state)
    app.router.add_post("/_sandbox/violations", handle_violations)
    app.router.add_post("/_sandbox/plates", handle_plates)
    app.router.add_get("/_sandbox/clock", handle_clock)
    app.router.add_put("/_sandbox/clock", handle_clock)
    return app


async def serve(host: str, port: int, config: SandboxConfig) -> None:
    """Serve the sandbox on ``host:port`` until cancelled."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logger.info(
            'sandbox_listening host="%s" port=%d client="%s" db="%s" faults=%s',
            host,
            port,
            config.client,
            config.db_path or ":memory:",
            json.dumps(config.faults.to_dict()),
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        logger.info("sandbox_stopped")
