"""The vendor's token never enters Kafka, a log line or an error message (gateway process)."""

from __future__ import annotations

import httpx

from foundation.settings import TOPICS
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import (
    PERMIT_PUSH_EXAMPLE,
    PROFILE_PUSH_EXAMPLE,
    VEHICLE_PUSH_EXAMPLE,
)
from tests.support.kafka import topic_messages
from tests.support.recording_controller import RecordingController, WorkerSessions


def test_the_vendor_token_is_in_no_topic_no_log_line_and_no_answer(stack_env, start_process):
    with RecordingController().in_thread() as controller, WorkerSessions().in_thread() as worker:
        env = {
            **stack_env,
            "PARKSTREAM_LOG_LEVEL": "debug",
            "PARKSTREAM_CONTROLLER_URL": controller.url,
            "PARKSTREAM_WORKER_URL": worker.url,
            "PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats",
        }
        port = int(env["PARKSTREAM_GATEWAY_PORT"])
        gateway = start_process("gateway", env, port)
        token = {"apiToken": VENDOR_TOKEN}
        answers = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as vendor:
            api = f"/api/{CLIENT}/v1"
            push = vendor.post(f"{api}/permits/push", json={**token, **PERMIT_PUSH_EXAMPLE})
            reference = push.json()["reference_id"]
            answers += [
                push,
                vendor.post(f"{api}/permits/update", json={**token, "referenceID": reference}),
                vendor.post(f"{api}/permits/delete", json={**token, "referenceID": reference}),
                vendor.post(f"{api}/vehicles/push", json={**token, **VEHICLE_PUSH_EXAMPLE}),
                vendor.post(f"{api}/profiles/push", json={**token, **PROFILE_PUSH_EXAMPLE}),
                # Refused requests, with the token in the body, the query and a header.
                vendor.post(f"{api}/permits/push", json={**token, "LicencePlate": ""}),
                vendor.post("/api/OC-OTHER/v1/permits/push", json={**token, **PERMIT_PUSH_EXAMPLE}),
                vendor.post(
                    f"{api}/permits/push",
                    content=f"apiToken={VENDOR_TOKEN}",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ),
                vendor.get(f"{api}/permits/{reference}", params={"apiToken": VENDOR_TOKEN}),
                vendor.get(
                    f"{api}/permits/not-ours", headers={"Authorization": f"Bearer {VENDOR_TOKEN}"}
                ),
                vendor.post(f"{api}/permits/stats", json={**token, "zones": "zone1"}),
            ]
        gateway.stop()

    assert [a.status_code for a in answers] == [
        200,
        200,
        200,
        200,
        200,
        422,
        403,
        400,
        200,
        404,
        200,
    ]
    for answer in answers:
        assert VENDOR_TOKEN not in answer.text
    log = gateway.log()
    assert 'request accepted endpoint="permits/push" vendor="hotspot"' in log  # it did log
    assert VENDOR_TOKEN not in log
    bootstrap, prefix = env["PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS"], env["PARKSTREAM_TOPIC_PREFIX"]
    produced = 0
    for name in TOPICS:
        for message in topic_messages(bootstrap, f"{prefix}parkstream.{name}.v1"):
            produced += 1
            assert VENDOR_TOKEN.encode() not in message.value()
            assert VENDOR_TOKEN.encode() not in (message.key() or b"")
            assert all(VENDOR_TOKEN.encode() not in v for _, v in message.headers() or [])
    assert produced == 5
    # The Controller saw parkstream's token, never the vendor's.
    assert all(call.body.get("apiToken") != VENDOR_TOKEN for call in controller.calls)
