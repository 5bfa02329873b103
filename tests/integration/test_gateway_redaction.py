"""The gateway never hands a vendor parkstream's Controller token, in any form.

A real Controller stand-in (an HTTP server on loopback) echoes the token it received,
raw, JSON-escaped and URL-encoded, into its answers; the gateway relays them. And the
delivery status of a dead-lettered permit carries the documented message of its code,
never the Controller's own text.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from foundation.broker import free_port
from foundation.settings import Settings
from producers.gateway import create_app
from schemas.controller import ERROR_MESSAGES, TOKEN_FIELDS
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.recording_controller import WorkerSessions

# parkstream's own Controller token, with the characters that escape differently.
ODD_TOKEN = 'ctl/3f9a"1c7e-é-secret ü+&=%'


def _forms(token: str) -> list[str]:
    ascii_json = json.dumps(token)[1:-1]
    plain_json = json.dumps(token, ensure_ascii=False)[1:-1]
    forms = [
        token,
        ascii_json,
        plain_json,
        ascii_json.replace("/", "\\/"),
        plain_json.replace("/", "\\/"),
        quote(token),
        quote(token, safe=""),
        quote_plus(token),
    ]
    cased = [re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms]
    return sorted(set(forms + cased))


def _json_text(form: str) -> bool:
    try:
        json.loads(f'"{form}"')
    except ValueError:
        return False
    return True


class EchoingController:
    """Answers every call with a body that echoes the token it was sent, in every form."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens: list[str] = []
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        token = next(body[name] for name in TOKEN_FIELDS if name in body)
        self.tokens.append(token)
        text = json.dumps(
            {"data": [], "status": "success", "user_types": [], "records": []},
            ensure_ascii=False,
        )[:-1]
        for index, form in enumerate(_forms(token)):
            # Each form, as it is, inside a JSON string, as a Controller quoting a request
            # would; a form that cannot stand in a JSON string (the raw token) is escaped.
            text += (
                f', "echo{index}": "seen {form if _json_text(form) else json.dumps(form)[1:-1]}"'
            )
        text += f', "query": "https://ctl.example/?apiToken={quote(token, safe="")}"}}'
        return web.Response(body=text.encode(), status=403, content_type="application/json")

    async def start(self) -> EchoingController:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def controller():
    echoing = await EchoingController().start()
    yield echoing
    await echoing.stop()


@pytest.fixture
async def worker():
    sessions = await WorkerSessions().start()
    yield sessions
    await sessions.stop()


@pytest.fixture
async def gateway(stack_env, controller, worker):
    settings = Settings.from_env(
        {
            **stack_env,
            "PARKSTREAM_CONTROLLER_URL": controller.url,
            "PARKSTREAM_CONTROLLER_API_TOKEN": ODD_TOKEN,
            "PARKSTREAM_WORKER_URL": worker.url,
            # Pass-through calls need a grant (docs/gateway.md).
            "PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats+profiles/types/list"
            "+violations/send_overdue_to_collections+validate/plate",
        }
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/api/{CLIENT}/v1/permits/stats", {"apiToken": VENDOR_TOKEN}),
        (f"/api/{CLIENT}/v1/profiles/types/list", {"apiToken": VENDOR_TOKEN}),
        (f"/api/{CLIENT}/v1/violations/send_overdue_to_collections", {"apiToken": VENDOR_TOKEN}),
        ("/api/v1/validate/plate", {"api_token": VENDOR_TOKEN, "client": CLIENT, "plate": "A1"}),
    ],
    ids=["stats", "user-types", "overdue", "validate-plate"],
)
async def test_a_relayed_answer_carries_no_form_of_parkstreams_token(
    gateway, controller, path: str, body: dict[str, Any]
) -> None:
    answer = await gateway.post(path, json=body)
    text = await answer.text()
    assert controller.tokens == [ODD_TOKEN]  # the Controller got the token and echoed it
    assert answer.status == 403  # status and the rest of the body relayed as they were
    assert [form for form in _forms(ODD_TOKEN) if form in text] == []
    relayed = json.loads(text)  # still the JSON the Controller sent, token masked
    assert relayed["status"] == "success"
    assert relayed["echo0"].startswith("seen ***")
    assert relayed["query"] == "https://ctl.example/?apiToken=***"


async def test_a_dead_lettered_permit_shows_the_documented_message_not_the_controllers(
    gateway, worker
) -> None:
    pushed = await gateway.post(
        f"/api/{CLIENT}/v1/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
    )
    reference = (await pushed.json())["reference_id"]
    worker.record(
        reference,
        "dead_lettered",
        error_code=9002,
        error_message=f"<html>token {ODD_TOKEN} refused by the WAF</html>",
    )
    answer = await gateway.get(
        f"/api/{CLIENT}/v1/permits/{reference}", headers={"Authorization": f"Bearer {VENDOR_TOKEN}"}
    )
    status = await answer.json()
    assert (status["error_code"], status["error_message"]) == (9002, ERROR_MESSAGES[9002])
    assert "WAF" not in json.dumps(status)
