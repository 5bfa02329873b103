"""A session's create, update and delete, a vehicle and a profile, from a vendor through
``parkstream gateway`` and ``parkstream worker`` processes to a Controller that is not
the sandbox."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR_TOKEN
from tests.e2e.conftest import wait_until
from tests.support.examples import (
    PERMIT_PUSH_EXAMPLE,
    PERMIT_UPDATE_EXAMPLE,
    PROFILE_PUSH_EXAMPLE,
    VEHICLE_PUSH_EXAMPLE,
)
from tests.support.recording_controller import RecordingController

TOKEN = {"apiToken": VENDOR_TOKEN}


@pytest.fixture
async def controller():
    recording = await RecordingController().start()
    yield recording
    await recording.stop()


async def test_create_update_delete_reach_the_controller_in_order_under_its_reference(
    stack_env, start_process, controller
):
    env = {
        **stack_env,
        "PARKSTREAM_CONTROLLER_URL": controller.url,
        "PARKSTREAM_WORKER_URL": f"http://127.0.0.1:{stack_env['PARKSTREAM_WORKER_WEB_PORT']}",
    }
    worker = start_process("worker", env, int(env["PARKSTREAM_WORKER_WEB_PORT"]))
    gateway = start_process("gateway", env, int(env["PARKSTREAM_GATEWAY_PORT"]))
    api = f"/api/{CLIENT}/v1"

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_PORT']}", timeout=30
    ) as vendor:
        pushed = await vendor.post(f"{api}/permits/push", json={**TOKEN, **PERMIT_PUSH_EXAMPLE})
        reference = pushed.json()["reference_id"]
        updated = await vendor.post(
            f"{api}/permits/update",
            json={**TOKEN, "referenceID": reference, **PERMIT_UPDATE_EXAMPLE, "Amount": "20.00"},
        )
        deleted = await vendor.post(
            f"{api}/permits/delete", json={**TOKEN, "referenceID": reference}
        )
        vehicle = await vendor.post(f"{api}/vehicles/push", json={**TOKEN, **VEHICLE_PUSH_EXAMPLE})
        profile = await vendor.post(f"{api}/profiles/push", json={**TOKEN, **PROFILE_PUSH_EXAMPLE})
        assert [a.status_code for a in (pushed, updated, deleted, vehicle, profile)] == [200] * 5

        await wait_until(lambda: len(controller.calls) >= 5)

        async def status():
            answer = await vendor.get(
                f"{api}/permits/{reference}", headers={"Authorization": f"Bearer {VENDOR_TOKEN}"}
            )
            return answer.json() if answer.json().get("state") == "deleted" else None

        final = await wait_until(status, timeout=30)
    await asyncio.sleep(1)  # let a duplicate, if the pipeline made one, arrive

    permits = [  # the worker's zone lookups (permits/stats) are not the session's calls
        c for c in controller.calls if "/permits/" in c.path and not c.path.endswith("/stats")
    ]
    assert [c.path.rsplit("/", 1)[1] for c in permits] == ["push", "update", "delete"]
    push, update, delete = permits
    assert push.body == {"apiToken": CONTROLLER_TOKEN, **PERMIT_PUSH_EXAMPLE}
    # The Controller's own reference id, learned from its push answer, not parkstream's.
    controller_reference = update.body["referenceID"]
    assert controller_reference != reference
    assert delete.body == {"apiToken": CONTROLLER_TOKEN, "referenceID": controller_reference}
    assert update.body == {
        "apiToken": CONTROLLER_TOKEN,
        "referenceID": controller_reference,
        **PERMIT_UPDATE_EXAMPLE,
        "Amount": "20.00",
    }

    [vehicle_call] = controller.calls_to("vehicles/push")
    assert vehicle_call.body == {"apiToken": CONTROLLER_TOKEN, **VEHICLE_PUSH_EXAMPLE}
    [profile_call] = controller.calls_to("profiles/push")
    assert profile_call.body["unique_id"] == "tester23"
    assert profile_call.body["apiToken"] == CONTROLLER_TOKEN

    assert final["state"] == "deleted"
    for process in (worker, gateway):
        assert VENDOR_TOKEN not in process.log()
