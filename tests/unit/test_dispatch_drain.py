"""A revocation (a rebalance or a graceful stop) lets a command whose intent is durable make
its call and record the outcome: it never leaves a push to reconcile (issue 11, item 5)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
from faust.types import TP

from consumers.dispatch import Dispatcher
from foundation.controller import ControllerClient
from foundation.settings import Settings
from foundation.worker.app import WorkerApp
from schemas.avro import codec
from streams.plan import command_for_session_event
from tests.support.examples import session_event
from tests.support.tables import acknowledged_future

PUSHED = {"status": "success", "reference_id": "R-1", "InternalReferenceID": "R-1"}


async def test_a_revocation_while_the_intent_is_acknowledged_still_calls_and_records_done(
    monkeypatch,
) -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=PUSHED)

    client = ControllerClient(
        "http://controller.test", "OC-TOMA", "tok", transport=httpx.MockTransport(answer)
    )
    worker = WorkerApp(Settings())
    dispatcher = Dispatcher(worker, controller=client)
    journaled: list[str] = []
    revoking: list[asyncio.Task[int]] = []

    async def journal(command_id: str, entry: dict[str, Any], lease: Any) -> None:
        lease.check_write()
        journaled.append(entry["state"])
        if entry["state"] == "intent":  # SIGTERM arrives while the intent is being acknowledged
            revoking.append(asyncio.create_task(worker.ownership.revoke()))
            await asyncio.sleep(0.01)

    async def no_session(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    async def result_sent(*args: Any, **kwargs: Any) -> Any:
        return acknowledged_future()

    monkeypatch.setattr(dispatcher, "_journal", journal)
    monkeypatch.setattr(dispatcher, "_send_session_update", no_session)
    monkeypatch.setattr(dispatcher, "_send_result", result_sent)
    command = command_for_session_event(session_event())
    message = SimpleNamespace(
        value=codec().encode("ControllerCommand", command),
        key=command["session_id"].encode(),
        topic="commands",
        partition=0,
        offset=0,
    )
    lease = worker.ownership.lease(TP("commands", 0))
    with lease.working():
        await dispatcher.apply_command(SimpleNamespace(message=message), lease)
    assert len(calls) == 1  # the call announced by the durable intent was made
    assert journaled == ["intent", "done"]  # and settled: nothing to reconcile after the stop
    assert await revoking[0] == 0  # the drain waited for it; nothing was left unfinished
