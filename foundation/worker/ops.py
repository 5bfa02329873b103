"""The worker's ops pages (``/healthz``, ``/readyz``, ``/metrics``) and its stall watchdog's
task, timer and diagnostics."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from prometheus_client.aiohttp import make_aiohttp_handler

from foundation.worker.app import WorkerApp, stream_queues


def _recovery_position(app: faust.App) -> int:
    """How far table recovery has read (it moves while a worker recovers its tables)."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # the TableManager's
    offsets = [*recovery.active_offsets.values(), *recovery.standby_offsets.values()]
    return sum(offset for offset in offsets if offset is not None)


def _consumer_state(app: faust.App) -> dict[str, Any]:
    """What Faust's consumer holds back (read when the worker stalls)."""
    consumer: Any = app.consumer  # Faust's aiokafka Consumer: its private flow state
    queues = {}
    for topic, queue in stream_queues(app):
        pending = len(getattr(queue, "_pending_pressure_drop_callbacks", ()))
        queues[topic.get_topic_name()] = f"{queue.qsize()}/{queue.maxsize} drop_waits={pending}"
    return {
        "assigned": sorted(str(tp) for tp in consumer.assignment()),
        "fetching": sorted(str(tp) for tp in (consumer._active_partitions or ())),
        "paused_buffer_full": sorted(str(tp) for tp in consumer._buffered_partitions),
        "paused": sorted(str(tp) for tp in consumer._paused_partitions),
        "flow_active": consumer.flow_active,
        "rebalancing": app.rebalancing,
        "in_recovery": app.in_recovery,
        "queues": queues,
    }


def tables_not_ready(worker: WorkerApp) -> str | None:
    """Why the worker cannot serve its partitions yet, or ``None`` once it can.

    A worker is ready once the group gave it its partitions (none, when there are more
    workers than partitions) and their tables are recovered from the changelogs: Faust
    ends a rebalance only after its table recovery, so a rolling update that waits for
    ``/readyz`` never stops the next worker before this one has its state.
    """
    if not worker.assignments:
        return "waiting for the consumer group to assign partitions"
    if worker.app.rebalancing or worker.app.in_recovery:
        return "recovering tables from their changelogs"
    return None


def register_ops(worker: WorkerApp) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics``, and the stall watchdog's task and timer."""
    app, watchdog, settings = worker.app, worker.watchdog, worker.settings

    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    async def readyz(web: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        waited = watchdog.clock.observe(sum(watchdog.work().values()) > 0)
        reason = tables_not_ready(worker)
        if reason is None and waited >= settings.worker_stall_seconds / 2:
            reason = f"no progress for {waited:.0f} s with work pending"
        if reason is not None:
            return web.json({"status": "not ready", "reason": reason}, status=503)
        return web.json({"status": "ready", "assigned_partitions": assigned})

    metrics_handler = make_aiohttp_handler()

    async def metrics(web: Any, request: Any) -> Any:
        # Faust's web driver is aiohttp's: its request and response are aiohttp's own.
        return await metrics_handler(request)

    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
    app.page("/metrics")(metrics)

    watchdog.add_diagnostic("consumer", lambda: _consumer_state(app))
    watchdog.add_diagnostic("leases", lambda: {"busy": worker.ownership.busy})
    watchdog.add_work("rebalance", lambda: int(bool(app.rebalancing)))
    recovered_to = [0]

    async def start_watchdog() -> None:
        watchdog.start(asyncio.get_running_loop())

    async def watch() -> None:
        try:
            position = _recovery_position(app)
        except Exception:  # not recovering yet: nothing to compare
            position = recovered_to[0]
        if position != recovered_to[0]:
            recovered_to[0] = position
            watchdog.progressed()
        watchdog.tick()

    app.task(start_watchdog)
    app.timer(interval=1.0)(watch)
