"""The worker's Faust app and the hooks every agent's work is wired to.

``WorkerApp(settings)`` builds the Faust app (with parkstream's consumer, ``_Consumer``),
its raw-bytes topics, the partition leases (``ownership``) and the stall watchdog
(``watchdog``), and wires revocations, assignments, a failed agent and seeking a
partition back to every agent's pipeline (``pipeline``). Building it starts nothing;
``parkstream.worker`` runs it. The agents (``streams``, ``consumers``) register on it.

Topics carry raw bytes and the agents decode them (``schemas.avro``), so an
undecodable record becomes a dead letter instead of crashing an agent.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from prometheus_client import Counter

from foundation.kafka import topic_config
from foundation.settings import Settings
from foundation.worker.durable import acknowledged
from foundation.worker.ordering import InOrderAcks
from foundation.worker.ownership import Lease, Ownership
from foundation.worker.pipeline import OrderedPipeline
from foundation.worker.stores import store_url, table_options
from foundation.worker.watchdog import Watchdog
from schemas.avro import codec
from schemas.avro import configure as configure_codec

log = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter(
    "parkstream_events_consumed_total", "Records read by the worker.", ["topic"]
)
EVENTS_PRODUCED = Counter(
    "parkstream_events_produced_total", "Records written by the worker.", ["topic"]
)
DEAD_LETTERS = Counter(
    "parkstream_dead_letters_total",
    "Records sent to the dead-letter topic.",
    ["reason", "error_code"],
)


# A worker told to stop that has not exited after this long exits by force.
CRASH_EXIT_SECONDS = 30.0


class _NoReadOffsetFilter(dict):  # type: ignore[type-arg]
    """Faust's ``Consumer._read_offset``, made to filter nothing.

    Faust drops every record at or below the last offset it handed over. A fetch batch
    still being handed over when a rebalance (or a seek back) begins raises that mark
    past records this worker never finished, and the records fetched again from the
    committed offset are then dropped for good: seen here as a worker that applied a
    session's update after forgetting its push, or that stopped receiving a partition
    after seeking it back (``tests/unit/test_ordering.py``, docs/local-broker.md).
    Reading the mark as ``None`` hands over whatever Kafka's fetch position gives; a
    record handed over twice is a new delivery behind the first (``foundation.worker.ordering``),
    and the journal and dedupe make its repeat harmless.
    """

    def __getitem__(self, tp: Any) -> None:
        return None


class _Consumer(AiokafkaConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = _NoReadOffsetFilter()


def faust_app(settings: Settings) -> faust.App:
    """The Faust app of ``settings``, with parkstream's consumer (``_Consumer``)."""
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        store=store_url(settings.table_store),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        # Faust declares only its internal topics (table changelogs) with topic_partitions,
        # so they match the source topics that foundation.kafka.ensure_topics created.
        consumer_auto_offset_reset="earliest",
        # No standby replicas: a worker moved from active to standby crashes recovery with an
        # off-by-one ConsistencyError (faust-streaming #158, seen here with two workers). A new
        # owner reads the changelog from its local file's persisted offset instead (RocksDB).
        table_standby_replicas=0,
        # The check compares a local file's persisted offset with the changelog's end, to catch
        # a wiped topic; on the one-machine broker it compared against an end one behind
        # (same bug family) and crashed recovery. Without it, a changelog deleted and created
        # again needs the workers' data dirs cleared too (docs/deploying.md).
        recovery_consistency_check=False,
        producer_acks=-1,
        # A produce request left unanswered is retried after this, instead of stalling its
        # partition (and every write queued behind it) for Faust's default 20 minutes.
        producer_request_timeout=30,
        # PARKSTREAM_PRODUCER_BATCH_MESSAGES=1 (the local Tansu broker): one record per batch,
        # since Tansu answers ListOffsets wrongly for larger batches and Faust's table recovery
        # reads changelogs up to that answer. aiokafka always admits a batch's first record.
        producer_max_batch_size=1 if settings.producer_batch_messages == 1 else 16384,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        # A revocation waits for nothing of Faust's own: each agent settles or forgets its work
        # under way itself, within PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS + 5 s (foundation.worker.ownership).
        # Faust's wait would run every delivered record to its end, a Controller outage included.
        stream_wait_empty=False,
        # The group waits this long for a member's revocation before it drops the member and
        # hands its partitions on: well beyond our drain, so a new owner never runs beside it.
        broker_rebalance_timeout=max(60.0, 3 * settings.drain_seconds),
        web_port=settings.worker_web_port,
        web_bind="0.0.0.0",
        # The address other workers use to forward a table-routed request (/sessions/...):
        # loopback on one machine; Kubernetes sets NODE_CANONICAL_URL to the pod's address.
        web_host="127.0.0.1",
        web_in_thread=False,
        datadir=str(settings.data_dir / "worker"),
    )
    app.transport.Consumer = _Consumer  # type: ignore[misc]  # Faust's documented hook
    return app


def dead_letter(
    message: Any,
    reason: str,
    error_code: int | None = None,
    error_message: str | None = None,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A ``DeadLetter`` record that keeps the original record byte for byte."""
    return {
        "original_value": message.value,
        "original_key": message.key,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "reason": reason,
        "error_code": error_code,
        "error_message": error_message,
        "command_id": command_id,
        "failed_at": datetime.now(UTC),
    }


class WorkerApp:
    """The worker's shared parts, built from one ``Settings`` value.

    The Faust app and its topics, the leases of the partitions this worker owns
    (``foundation.worker.ownership``), the stall watchdog (``foundation.worker.watchdog``), and the hooks
    every agent's work is wired to: revocations, assignments, a failed agent, seeking a
    partition back. Building it starts nothing; ``parkstream.worker`` runs it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = faust_app(settings)
        self.sessions_topic = self.raw_topic("sessions")
        self.commands_topic = self.raw_topic("commands")
        self.results_topic = self.raw_topic("results")
        self.dlq_topic = self.raw_topic("dlq")
        self.vehicles_topic = self.raw_topic("vehicles")
        self.users_topic = self.raw_topic("users")
        self.ownership = Ownership(settings.drain_seconds)
        self.watchdog = Watchdog(settings.worker_stall_seconds)
        # Revocation: every agent's work under way settles or is forgotten before Faust
        # moves on; at an assignment, each tracker keeps only the partitions still held.
        self._forgetters: list[Callable[[], object]] = []
        self._trackers: list[InOrderAcks] = []
        # Assignments received from the group (0: the worker has never had its partitions).
        self.assignments = 0
        # The time the worker's tables are stamped with and their retention is counted by
        # (tests move it by hand).
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.app.on_partitions_revoked.connect(self._partitions_revoked)  # type: ignore[arg-type]
        self.app.on_partitions_assigned.connect(self._partitions_assigned)  # type: ignore[arg-type]
        # Records are written (and Confluent-framed ones read) through the configured registry.
        configure_codec(settings.schema_registry_url)

    def raw_topic(self, name: str) -> faust.TopicT:
        """Topic ``name`` (``settings.topic``) carrying raw bytes: the agents decode them."""
        return self.app.topic(
            self.settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    def table(self, name: str, key_type: type) -> faust.Table[Any, Any]:
        """A changelogged table co-partitioned with the topics, replicated like them."""
        built = self.app.Table(
            name,
            default=None,
            partitions=self.settings.topic_partitions,
            key_type=key_type,
            extra_topic_configs=topic_config(self.settings),
            options=table_options(self.settings.table_store),
        )
        assert isinstance(
            built, faust.Table
        )  # foundation.worker.durable writes through its serializers
        return built

    def on_revocation(self, forget: Callable[[], object]) -> None:
        """``forget()`` runs once a revocation's drain has ended (drop what did not finish)."""
        self._forgetters.append(forget)

    async def quiesce(self, why: str) -> None:
        """Stop every agent's work for the partitions this worker holds, within the drain bound."""
        left = await self.ownership.revoke()
        for forget in self._forgetters:
            forget()
        log.info(
            'work drained why="%s" seconds=%.2f left_unfinished=%d',
            why,
            self.ownership.last_drain_seconds,
            left,
        )

    async def _partitions_revoked(self, sender: Any, revoked: Any, **kwargs: Any) -> None:
        await self.quiesce("rebalance")

    async def _partitions_assigned(self, sender: Any, assigned: Any, **kwargs: Any) -> None:
        self.assignments += 1
        for acks in self._trackers:
            acks.retain(assigned)

    def stop_worker(self, exc: BaseException) -> None:
        """An agent failed: stop the worker (it restarts from the committed offsets).

        Unacknowledged records are redelivered only to a restarted consumer, so the whole
        worker stops. Faust's stop is graceful; should it hang, the process exits anyway.
        """
        log.error('agent failed; stopping the worker error="%s"', exc)
        self.app.loop.create_task(self.app.crash(exc))

        def force() -> None:
            log.error("the worker did not stop in %.0f s; exiting", CRASH_EXIT_SECONDS)
            os._exit(1)

        timer = threading.Timer(CRASH_EXIT_SECONDS, force)
        timer.daemon = True
        timer.start()

    async def send_dead_letter(self, message: Any, record: dict[str, Any], lease: Lease) -> None:
        """Publish a dead letter with Kafka Connect-style ``__dlq.*`` headers beside the fields."""
        headers = {
            "__dlq.reason": record["reason"].encode(),
            "__dlq.topic": record["topic"].encode(),
            "__dlq.partition": str(record["partition"]).encode(),
            "__dlq.offset": str(record["offset"]).encode(),
        }
        if record["error_code"] is not None:
            headers["__dlq.error_code"] = str(record["error_code"]).encode()
        # Acknowledged before the caller records the command as done or acks its offset.
        await acknowledged(
            self.dlq_topic.send(
                key=message.key, value=codec().encode("DeadLetter", record), headers=headers
            ),
            lease,
            "dlq",
        )
        DEAD_LETTERS.labels(record["reason"], str(record["error_code"] or "")).inc()
        EVENTS_PRODUCED.labels("dlq").inc()
        log.warning(
            'dead letter reason="%s" error_code="%s" topic="%s" partition=%d offset=%d key="%s" '
            'command_id="%s"',
            record["reason"],
            record["error_code"] or "",
            record["topic"],
            record["partition"],
            record["offset"],
            (message.key or b"").decode(errors="replace"),
            record["command_id"] or "",
        )

    def track(self, name: str, acks: InOrderAcks) -> InOrderAcks:
        """Wire an agent's acknowledgements to the watchdog, revocations and assignments."""
        self.watchdog.add_work(name, lambda: acks.unfinished)
        acks.committed = self.committed_offset
        self.on_revocation(acks.forget)
        self._trackers.append(acks)
        return acks

    def committed_offsets(self) -> Mapping[Any, int | None]:
        """The offset each assigned partition resumes from (``None``: nothing committed)."""
        # Faust keeps what it committed and read at assignment here; no public accessor.
        return getattr(self.app.consumer, "_committed_offset", {})

    def committed_offset(self, tp: Any) -> int | None:
        return self.committed_offsets().get(tp)

    def in_hand(self, tp: Any) -> int:
        """Records of ``tp`` handed over to an agent whose outcome is not recorded yet."""
        return sum(acks.in_hand(tp) for acks in self._trackers)

    def queued(self, tp: Any) -> int:
        """Records of ``tp``'s topic fetched and waiting in its stream's queue."""
        for topic, queue in stream_queues(self.app):
            if tp.topic in topic.topics:
                return int(queue.qsize())
        return 0

    async def seek(self, tp: Any, offset: int) -> None:
        """Hand ``tp`` over again from ``offset`` (records forgotten or skipped, ``foundation.worker.ordering``).

        Through the consumer's own thread (``seek_wait``), which also moves Faust's read
        offset; ``Consumer.seek`` called from here touched the consumer thread's state
        directly, and the partition was never fetched again (the watchdog ended it).
        """
        await self.app.consumer.seek_wait({tp: offset})

    def pipeline(self, name: str) -> OrderedPipeline:
        """An agent's ordered pipeline, wired to the worker's leases, watchdog and revocations."""
        line = OrderedPipeline(
            name, self.ownership, self.watchdog.progressed, self.stop_worker, self.seek
        )
        self.track(name, line.acks)
        return line


def stream_queues(app: faust.App) -> list[tuple[Any, Any]]:
    """``(topic, queue)`` of each topic a stream iterates: records fetched, not handed over."""
    found = []
    for topic in getattr(app.topics, "_topics", ()):  # Faust's conductor has no public list
        queue = getattr(topic, "queue", None) if topic.is_iterator else None
        if queue is not None:
            found.append((topic, queue))
    return found
