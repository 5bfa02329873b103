r"""The planning agents: decode -> enrich -> dedupe -> plan, for the three event topics.

    sessions.v1 --.
    vehicles.v1 --+-- decode -> enrich -> dedupe -> plan --> commands.v1 --dispatch--> Controller
    users.v1 -----'                                          (consumers/)  \--> results.v1 / dlq.v1

``register_planning(worker)`` adds the three agents and the ``dedupe`` table to a
``foundation.worker.app.WorkerApp``. Enrichment, dedupe and planning are plain functions
(``streams/enrich.py``, ``streams/dedupe.py``, ``streams/plan.py``); the agents here
only do I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import faust
from prometheus_client import Counter

from foundation.worker.app import EVENTS_CONSUMED, EVENTS_PRODUCED, WorkerApp, dead_letter
from foundation.worker.durable import acknowledged_all, durable_prune, durable_set, sent
from foundation.worker.ownership import Lease
from foundation.worker.pipeline import Head
from foundation.worker.stores import partition_items
from schemas.avro import DecodeError, codec
from streams.dedupe import check, expired
from streams.enrich import (
    Defaults,
    UserTypeDirectory,
    ZoneDirectory,
    enrich_session,
    enrich_user,
    enrich_vehicle,
)
from streams.plan import (
    command_for_session_event,
    command_for_user_event,
    command_for_vehicle_event,
)

log = logging.getLogger(__name__)

DEDUPE_DROPPED = Counter(
    "parkstream_dedupe_dropped_total",
    "Events dropped as duplicates of one seen within PARKSTREAM_DEDUPE_WINDOW.",
    ["topic"],
)
FLAGGED = Counter(
    "parkstream_events_flagged_total",
    "Events pushed with a warning: unknown_zone (a disconnected record), unknown_user_type.",
    ["topic", "flag"],
)
for _topic in ("sessions", "vehicles", "users"):
    DEDUPE_DROPPED.labels(_topic)
FLAGGED.labels("sessions", "unknown_zone")
FLAGGED.labels("users", "unknown_user_type")


Enricher = Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]]
Planner = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Planned:
    """An event's command, and the dedupe state to record once the command is durable."""

    command: dict[str, Any]
    dedupe_key: str
    dedupe_state: dict[str, Any]


def dedupe_key(topic: str, key: bytes | None) -> str:
    return f"{topic}|{(key or b'').decode(errors='replace')}"


class Planning:
    """decode -> enrich -> dedupe -> plan -> the command, for the three event topics.

    Holds the operator's data for enrichment (zone aliases, defaults, read once at
    start) and the Controller's user types (refreshed by ``consumers.user_types``), and
    the ``dedupe`` table: topic key -> ``{"last": fingerprint, "at": ISO time,
    "created": bool}``, in the partition of its event. A dedupe state is written only
    once the event's command is acknowledged, so a crash can redeliver an event but
    never leave it "seen" without its command.
    """

    def __init__(self, worker: WorkerApp) -> None:
        settings = worker.settings
        self.worker = worker
        self.zones = (
            ZoneDirectory.from_file(settings.zone_aliases)
            if settings.zone_aliases
            else ZoneDirectory()
        )
        self.defaults = Defaults(
            currency=settings.default_currency,
            province=settings.default_province or None,
            plate_type=settings.default_plate_type or None,
        )
        self.user_types = UserTypeDirectory()
        self.dedupe_window = timedelta(seconds=settings.dedupe_window)
        self.created_retention = timedelta(days=settings.session_retention_days)
        self.clock = worker.clock
        self._pruned_on: dict[tuple[str, int], date] = {}
        self.seen = worker.table("dedupe", key_type=str)
        # Dedupe states decided but not durable yet (their command's acknowledgement is
        # awaited): the next events of the key are checked against them. Cleared at a
        # revocation: what was not made durable is decided again from the redelivered events.
        self._seen_pending: dict[str, dict[str, Any]] = {}
        worker.on_revocation(self._seen_pending.clear)

    def plan_one(
        self,
        topic: str,
        key: bytes | None,
        record: dict[str, Any],
        enrich: Enricher,
        planner: Planner,
    ) -> Planned | None:
        """Enrich, dedupe and plan one decoded event: its command, or None for a duplicate.

        Nothing is remembered here: the caller records the dedupe state after the command.
        """
        enriched, flags = enrich(record)
        for flag in flags:
            FLAGGED.labels(topic, flag).inc()
            log.warning(
                'event flagged flag="%s" topic="%s" vendor="%s"', flag, topic, record["vendor"]
            )
        table_key = dedupe_key(topic, key)
        state = self._seen_pending.get(table_key) or self.seen.get(table_key)
        duplicate, new_state = check(state, enriched, self.clock(), self.dedupe_window)
        if duplicate:
            DEDUPE_DROPPED.labels(topic).inc()
            log.info('duplicate dropped topic="%s" event_id="%s"', topic, record["event_id"])
            return None
        return Planned(planner(enriched), table_key, new_state)

    async def prune(self, topic: str, lease: Lease) -> None:
        """Once a day per topic and partition: drop ``topic``'s dedupe entries of the lease's
        partition that no event can be a duplicate of any more (``streams.dedupe.expired``).

        Run by the topic's own agent before its next event, so no event of the topic is
        being decided meanwhile; entries whose state is not durable yet are left alone.
        """
        now = self.clock()
        day, partition = now.date(), lease.partition
        if self._pruned_on.get((topic, partition)) == day:
            return
        self._pruned_on[topic, partition] = day
        prefix = dedupe_key(topic, b"")
        stale = [
            key
            for key, state in partition_items(self.seen, partition)
            if key.startswith(prefix)
            and key not in self._seen_pending
            and expired(state, now, self.dedupe_window, self.created_retention)
        ]
        await durable_prune(self.seen, stale, lease)
        if stale:
            log.info(
                'dedupe pruned topic="%s" partition=%d entries=%d', topic, partition, len(stale)
            )

    async def _record_seen(
        self, planned: Planned, command_acked: asyncio.Future[Any], lease: Lease
    ) -> None:
        """The tail of a planned event: its command acknowledged, then its dedupe state."""
        await acknowledged_all([command_acked])
        await durable_set(self.seen, planned.dedupe_key, planned.dedupe_state, lease)
        if self._seen_pending.get(planned.dedupe_key) is planned.dedupe_state:
            del self._seen_pending[planned.dedupe_key]

    def head(self, topic: str, record_name: str, enrich: Enricher, planner: Planner) -> Head:
        """decode -> enrich -> dedupe -> plan -> send the command, for one event of ``topic``."""
        worker = self.worker

        async def head(event: faust.EventT[Any], lease: Lease) -> Awaitable[None] | None:
            EVENTS_CONSUMED.labels(topic).inc()
            await self.prune(topic, lease)
            message = event.message
            try:
                _, record = codec().decode(message.value, expected=record_name)
            except DecodeError as exc:
                letter = dead_letter(message, "undecodable", error_message=str(exc))
                await worker.send_dead_letter(message, letter, lease)
                return None
            try:
                planned = self.plan_one(topic, event.key, record, enrich, planner)
                value = codec().encode("ControllerCommand", planned.command) if planned else None
            except Exception as exc:  # a bug here must not lose an accepted event
                log.exception('event could not be planned topic="%s"', topic)
                letter = dead_letter(message, "planning_failed", error_message=repr(exc)[:500])
                await worker.send_dead_letter(message, letter, lease)
                return None
            if planned is None or value is None:
                return None
            self._seen_pending[planned.dedupe_key] = planned.dedupe_state
            command_acked = await sent(
                worker.commands_topic.send(key=event.key, value=value), lease, "commands"
            )
            EVENTS_PRODUCED.labels("commands").inc()
            return self._record_seen(planned, command_acked, lease)

        return head


def register_planning(worker: WorkerApp) -> Planning:
    """Add the three planning agents (and table ``dedupe``) to the worker."""
    planning = Planning(worker)
    app = worker.app

    def agent(topic: str, record_name: str, enrich: Enricher, planner: Planner) -> Any:
        head = planning.head(topic, record_name, enrich, planner)

        async def plan(stream: faust.StreamT[Any]) -> None:
            await worker.pipeline(f"plan_{topic}").run(stream, head)

        return plan

    # Sessions -> permits/push, update or delete; vehicles -> vehicles/push; users ->
    # profiles/push. Named as when they were module-level agents (logs, dashboards).
    app.agent(worker.sessions_topic, name=f"{__name__}.plan")(
        agent(
            "sessions",
            "ParkingSessionEvent",
            lambda event: enrich_session(event, planning.zones, planning.defaults),
            command_for_session_event,
        )
    )
    app.agent(worker.vehicles_topic, name=f"{__name__}.plan_vehicles")(
        agent(
            "vehicles",
            "VehicleEvent",
            lambda event: (enrich_vehicle(event, planning.defaults), []),
            command_for_vehicle_event,
        )
    )
    app.agent(worker.users_topic, name=f"{__name__}.plan_users")(
        agent(
            "users",
            "UserEvent",
            lambda event: enrich_user(event, planning.user_types),
            command_for_user_event,
        )
    )
    return planning
