"""A Controller ErrorCode ends in the dead-letter topic with its code; replay applies it once."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from consumers.deadletters import read_dead_letters
from foundation.kafka import producer_config
from tests.e2e.conftest import wait_until
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.kafka import topic_messages


async def test_a_rejected_push_is_dead_lettered_with_its_code_and_replayed_once(stack):
    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    async with httpx.AsyncClient(timeout=10) as http:
        # The Controller refuses parkstream's token for pushes (an operator misconfiguration).
        await stack.set_faults(
            http, failure_rate=1.0, failure_error_code=9002, endpoints=["permits/push"]
        )
        reference = await stack.push(http, PERMIT_PUSH_EXAMPLE)

        [letter] = await wait_until(lambda: read_dead_letters(stack.settings), timeout=90)
        assert letter.record["reason"] == "controller_rejected"
        assert letter.record["error_code"] == 9002
        assert letter.key == reference.encode()
        assert await stack.sandbox_permits(http) == []

        listed = parkstream(stack, "dlq", "list", "--code", "9002")
        assert listed.returncode == 0
        assert "controller_rejected" in listed.stdout and reference in listed.stdout

        # The cause is fixed; the operator replays what failed with 9002, twice by mistake.
        await http.delete(f"{stack.sandbox_url}/_sandbox/faults")
        for sent in (1, 0):  # the second is refused: each dead letter is replayed once
            replayed = parkstream(stack, "dlq", "replay", "--code", "9002")
            assert (replayed.returncode, replayed.stdout.strip()) == (
                0,
                f"replayed {sent} dead letter(s)",
            )
        assert "skipped 1 already replayed" in replayed.stderr
        assert parkstream(stack, "dlq", "replay", "--code", "9034").returncode == 1

        permits = await wait_until(lambda: stack.sandbox_permits(http), timeout=60)
        replays = [
            c
            for c in topic_messages(
                stack.settings.kafka_bootstrap_servers, stack.settings.topic("commands")
            )
            if b"~replay-" in c.value()
        ]
        assert len(replays) == 1  # the second replay was never sent
        assert len(await stack.sandbox_permits(http)) == 1
        assert permits[0]["plate"] == "PL8RDR"
        status = await stack.session_status(http, reference)
        assert status["state"] == "delivered"
        assert status["controller_reference_id"] == permits[0]["reference_id"]


def parkstream(stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``parkstream`` CLI as an operator would, against this stack."""
    return subprocess.run(
        [sys.executable, "-m", "parkstream.cli", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_records_the_worker_cannot_read_are_dead_lettered_and_the_worker_goes_on(stack):
    # Anything can be written to parkstream's topics by a client with access: bytes that
    # are no record of ours, and records with no value at all (a tombstone). Each becomes
    # an `undecodable` dead letter; the worker keeps applying what follows them.
    from confluent_kafka import Producer

    stack.start_sandbox()
    stack.start_worker()
    stack.start_gateway()
    producer = Producer(producer_config(stack.settings.kafka_bootstrap_servers, batch_messages=1))
    unreadable = [
        ("sessions", b"not avro"),
        ("sessions", None),
        ("commands", None),
        ("results", None),
    ]
    for topic, value in unreadable:
        producer.produce(stack.settings.topic(topic), key=b"ps-unreadable", value=value)
    assert producer.flush(10) == 0
    async with httpx.AsyncClient(timeout=10) as http:
        reference = await stack.push(http, PERMIT_PUSH_EXAMPLE)
        letters = await wait_until(
            lambda: (
                (found := read_dead_letters(stack.settings))
                and len(found) >= len(unreadable)
                and found
            ),
            timeout=90,
        )
        assert sorted((e.record["topic"], e.record["reason"]) for e in letters) == sorted(
            (stack.settings.topic(topic), "undecodable") for topic, _ in unreadable
        )
        assert {e.record["original_value"] for e in letters} == {b"not avro", None}
        await wait_until(lambda: stack.sandbox_permits(http), timeout=60)
        assert (await stack.session_status(http, reference))["state"] == "delivered"
