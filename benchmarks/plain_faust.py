"""The baseline of ``benchmarks/throughput.py``: a plain Faust app doing the worker's job the
plain way.

Agent ``call`` reads the commands topic with ``concurrency=PARKSTREAM_CONTROLLER_CONCURRENCY``
and makes each command's Controller call with the worker's own client
(``foundation.controller.ControllerClient``, a pool of that many connections), through
the same ``consumers.apply.call_fields``: no order per key, no journal, no result or session
records, Faust's own acknowledgements (offsets committed as Faust does, faust-streaming #606).
Agent ``plan`` reads the sessions topic and sends each event's command with Faust's
producer (the same enrichment and planning functions as the worker, no dedupe), so the
baseline can stand behind the gateway too. Same broker settings as the worker where they
matter for speed: acks=all, ``producer_max_batch_size=1`` with
``PARKSTREAM_PRODUCER_BATCH_MESSAGES=1``.

Run as its own process: ``python -m benchmarks.plain_faust worker`` with the worker's environment
(``PARKSTREAM_*``); ``/metrics`` on ``PARKSTREAM_WORKER_WEB_PORT`` shows its calls
(``parkstream_bench_baseline_calls_total{outcome}``) and its produce requests
(``benchmarks._produce_count``). It has no ``main()``, so ``python -m benchmarks`` does not
take it for a benchmark.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import Counter
from prometheus_client.aiohttp import make_aiohttp_handler

from benchmarks._produce_count import count_writes
from consumers.apply import call_fields
from foundation import logs
from foundation.controller import ControllerClient
from foundation.errors import ParkstreamError
from foundation.settings import Settings
from schemas.avro import codec
from streams.enrich import Defaults, ZoneDirectory, enrich_session
from streams.plan import command_for_session_event

log = logging.getLogger(__name__)

CALLS = Counter(
    "parkstream_bench_baseline_calls_total", "Controller calls of the baseline.", ["outcome"]
)


def build(settings: Settings) -> faust.App:
    """The baseline app of ``settings`` (its agents and ``/metrics``); starts nothing."""
    concurrency = settings.controller_concurrency
    app = faust.App(
        f"{settings.topic_prefix}bench-plain-faust",
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_batch_size=1 if settings.producer_batch_messages == 1 else 16384,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        web_in_thread=False,
        datadir=str(settings.data_dir / "plain-faust"),
    )
    commands, sessions = (
        app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        for name in ("commands", "sessions")
    )
    clients: list[ControllerClient] = []
    zones, defaults = ZoneDirectory(), Defaults(currency=settings.default_currency)

    def controller() -> ControllerClient:
        if not clients:  # made on the running loop, at the first call
            clients.append(ControllerClient.from_settings(settings, max_connections=concurrency))
        return clients[0]

    async def plan(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            _, record = codec().decode(event.value, expected="ParkingSessionEvent")
            enriched, _ = enrich_session(record, zones, defaults)
            command = command_for_session_event(enriched)
            await commands.send(key=event.key, value=codec().encode("ControllerCommand", command))

    async def call(stream: faust.StreamT[Any]) -> None:
        async for value in stream:
            _, command = codec().decode(value, expected="ControllerCommand")
            try:
                await controller().call(command["endpoint"], call_fields(command, None))
            except ParkstreamError as exc:  # counted and logged; Faust acknowledges it anyway
                CALLS.labels("failed").inc()
                log.warning('call failed error="%s"', exc)
            else:
                CALLS.labels("applied").inc()

    app.agent(sessions, name="plan")(plan)
    app.agent(commands, name="call", concurrency=concurrency)(call)
    metrics_handler = make_aiohttp_handler()

    async def metrics(web: Any, request: Any) -> Any:
        return await metrics_handler(request)

    async def close_client(sender: Any, *args: Any, **kwargs: Any) -> None:
        for client in clients:
            await client.aclose()

    app.page("/metrics")(metrics)
    app.on_before_shutdown.connect(close_client)  # type: ignore[arg-type]
    return app


if __name__ == "__main__":
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    count_writes()
    worker = faust.Worker(
        build(settings), loglevel=settings.log_level.lower(), quiet=True, override_logging=False
    )
    worker.execute_from_commandline()
