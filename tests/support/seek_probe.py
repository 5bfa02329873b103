"""A Faust worker that reads a topic, seeks it back once, and prints what it was handed.

Run as ``python -m tests.support.seek_probe BOOTSTRAP TOPIC parkstream|faust``: with
``parkstream`` the worker uses parkstream's consumer (``foundation.worker.app._Consumer``), with
``faust`` Faust's own. It reads the topic's 200 records, seeks back to offset 50 when it
is handed offset 100, and once nothing more came for 5 s prints the offsets it was handed, one line of JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time

import faust


def main(bootstrap: str, topic_name: str, consumer: str) -> None:
    app = faust.App(
        f"seek-probe-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
    )
    if consumer == "parkstream":
        from foundation.worker.app import _Consumer

        app.transport.Consumer = _Consumer
    topic = app.topic(
        topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    handed: list[int] = []

    @app.agent(topic)
    async def read(stream: faust.StreamT) -> None:
        sought = False
        async for event in stream.noack().events():
            handed.append(event.message.offset)
            if event.message.offset == 100 and not sought:
                sought = True
                await app.consumer.seek_wait({event.message.tp: 50})

    @app.task
    async def report() -> None:
        seen = -1
        while not handed or len(handed) != seen:  # until nothing more came for 5 s
            seen = len(handed)
            await asyncio.sleep(5)
        sys.__stdout__.write("\nHANDED " + json.dumps(handed) + "\n")
        sys.__stdout__.flush()
        os._exit(0)  # a probe: nothing to stop gracefully

    worker = faust.Worker(app, loglevel="error", quiet=True)
    with contextlib.suppress(SystemExit):
        worker.execute_from_commandline()


if __name__ == "__main__":
    main(*sys.argv[1:4])
