"""One permit push from a vendor to a Controller, through gateway, Kafka and worker processes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from schemas.avro import codec
from tests.conftest import CLIENT, CONTROLLER_TOKEN, VENDOR_TOKEN
from tests.e2e.conftest import wait_until
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.kafka import topic_messages
from tests.support.recording_controller import RecordingController


@pytest.fixture
async def controller():
    recording = await RecordingController().start()
    yield recording
    await recording.stop()


async def test_documented_push_reaches_another_controller_once_with_its_token(
    stack_env, start_process, controller
):
    env = {**stack_env, "PARKSTREAM_CONTROLLER_URL": controller.url}
    gateway_port = int(env["PARKSTREAM_GATEWAY_PORT"])
    worker = start_process("worker", env, int(env["PARKSTREAM_WORKER_WEB_PORT"]))
    start_process("gateway", env, gateway_port)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}") as vendor:
        answer = await vendor.post(
            f"/api/{CLIENT}/v1/permits/push", json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}
        )
    assert answer.status_code == 200
    reference = answer.json()["reference_id"]

    await wait_until(lambda: controller.calls, timeout=90)
    # Let a duplicate, if the pipeline made one, arrive before counting.
    results = await wait_until(
        lambda: topic_messages(
            env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"],
            f"{env['PARKSTREAM_TOPIC_PREFIX']}parkstream.results.v1",
        )
    )
    await asyncio.sleep(2)

    # The worker also asks the Controller for its zones (permits/stats): not a push.
    [call] = [c for c in controller.calls if not c.path.endswith("/permits/stats")]
    assert call.path == f"/api/{CLIENT}/v1/permits/push"
    assert call.body == {"apiToken": CONTROLLER_TOKEN, **PERMIT_PUSH_EXAMPLE}
    assert VENDOR_TOKEN not in worker.log()

    [result_message] = results
    _, result = codec().decode(result_message.value(), expected="ControllerResult")
    assert result["session_id"] == reference
    assert result["outcome"] == "APPLIED"
    assert result["controller_reference_id"]
