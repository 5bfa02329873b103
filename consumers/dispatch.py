"""The dispatcher agent: applies each ``ControllerCommand`` to the Controller exactly once.

Commands of one key (one parking session) are applied strictly in order; different
keys run concurrently, up to ``PARKSTREAM_CONTROLLER_CONCURRENCY`` calls in flight
(``consumers.scheduler``). Offsets are acknowledged only as an unbroken prefix of
commands whose outcome is recorded (``consumers.ordering``), so a crash can only
redeliver, never skip. A redelivered command is recognised by its journal entry
(``consumers.journal``) and never applied twice.

Transient failures are retried with backoff and jitter for as long as they last; when
they persist the circuit opens (``consumers.retry``): calls stop, the scheduler fills,
the agent stops reading, and the backlog waits in Kafka. Nothing is dead-lettered for an
outage. A permanent failure (a Controller ``ErrorCode``, an undecodable or invalid
command) goes to ``dlq.v1`` at once with its code.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import UTC, date, datetime, timedelta
from typing import Any

import faust
from faust.streams import _current_event
from prometheus_client import Counter, Gauge, Histogram

from consumers.apply import call_fields, result_record
from consumers.controller import ControllerClient, ControllerReply
from consumers.deadletters import RESOLVE_ENDPOINT
from consumers.journal import (
    Step,
    applied_before,
    done_entry,
    expired,
    intent_entry,
    next_step,
    push_visible,
    pushed_before,
    resend_step,
)
from consumers.ordering import DeliveryTracker
from consumers.retry import CircuitBreaker, backoff_delay
from consumers.scheduler import KeyedScheduler
from parkstream.errors import ControllerRejected, PermanentError, TransientError
from schemas.avro import DecodeError, codec
from schemas.controller import ContractError, plate_permits
from streams.app import (
    EVENTS_CONSUMED,
    EVENTS_PRODUCED,
    app,
    commands_topic,
    dead_letter,
    results_topic,
    send_dead_letter,
    settings,
)
from streams.durable import acknowledged, current_partition, durable_set

log = logging.getLogger(__name__)

CONTROLLER_CALLS = Counter(
    "parkstream_controller_calls_total",
    "Calls made to the Controller, by outcome and Controller ErrorCode.",
    ["endpoint", "outcome", "error_code"],
)
CONTROLLER_LATENCY = Histogram(
    "parkstream_controller_call_duration_seconds",
    "Time from request sent to answer read, per Controller call.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIES = Counter("parkstream_controller_retries_total", "Controller calls retried.", ["endpoint"])
IN_FLIGHT = Gauge("parkstream_controller_in_flight", "Controller calls in flight.")
CIRCUIT = Gauge("parkstream_circuit_state", "Controller circuit: 0 closed, 1 half-open, 2 open.")
JOURNAL_PRUNED = Counter(
    "parkstream_journal_pruned_total",
    "Journal entries dropped after PARKSTREAM_JOURNAL_RETENTION_DAYS.",
)
RECONCILED = Counter(
    "parkstream_journal_reconciled_total",
    "Interrupted calls (a crash, or an answer lost to a timeout or 5xx) settled by re-sending.",
    ["outcome"],
)
END_TO_END = Histogram(
    "parkstream_end_to_end_seconds",
    "From the gateway accepting a vendor's event to the Controller applying its command.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
IN_DOUBT = Counter(
    "parkstream_sessions_in_doubt_total",
    "Pushes interrupted by a crash whose permit the Controller shows: reference unknown.",
)
for _endpoint in ("permits/push", "permits/update", "permits/delete"):
    for _outcome in ("applied", "rejected", "transient"):
        CONTROLLER_CALLS.labels(_endpoint, _outcome, "")
    RETRIES.labels(_endpoint)
for _outcome in ("skipped", "reapplied", "pushed_again", "in_doubt"):
    RECONCILED.labels(_outcome)

# command id -> {"state": "intent" | "done", ...}; keyed writes land in the partition of
# the command being processed, so the journal is co-partitioned with the commands.
journal = app.Table("journal", default=None, partitions=settings.topic_partitions, key_type=str)

# parkstream reference id (as bytes: ``session_key``) -> {"controller_ref", "state", "at",
# "error_code", ...}: what became of each session, and the Controller's reference id
# learned from its push. Bytes keys are stored raw, the same bytes as the commands
# topic's key: /sessions/{ref} is routed by hashing the serialized key. With str keys
# Faust serializes them as JSON ('"ps-..."'), which hashed to another partition for
# about two keys in three, and the request reached a worker without the session (404).
sessions = app.Table("sessions", default=None, partitions=settings.topic_partitions, key_type=bytes)


def session_key(reference_id: str) -> bytes:
    """The ``sessions`` table key of a parkstream reference id."""
    return reference_id.encode()


JOURNAL_RETENTION = timedelta(days=settings.journal_retention_days)
_journal_pruned_on: dict[int, date] = {}

breaker = CircuitBreaker()
_controller: ControllerClient | None = None
# At most PARKSTREAM_CONTROLLER_CONCURRENCY calls in flight (reconciliation calls included).
_calls = asyncio.Semaphore(settings.controller_concurrency)


def controller() -> ControllerClient:
    """The worker's one pooled Controller client (created on first use)."""
    global _controller
    if _controller is None:
        _controller = ControllerClient(
            settings.controller_url,
            settings.controller_client,
            settings.controller_api_token,
            timeout=settings.controller_timeout,
            max_connections=settings.controller_concurrency,
        )
    return _controller


async def call_until_answered(
    endpoint: str, fields: dict[str, Any], *, attempt: int = 0, stop_when_lost: bool = False
) -> tuple[ControllerReply | PermanentError | None, int]:
    """Call until the Controller gives a final answer: a reply, or a permanent error.

    Transient failures are retried, through the circuit breaker, for as long as they
    last. Returns the final answer and the number of calls made so far (``attempt``
    counts the earlier ones). With ``stop_when_lost``, returns ``None`` instead of
    retrying once a call failed transiently (after its backoff): that call may have
    been applied, and the caller re-sends it by the journal's rules.
    """
    while True:
        wait = breaker.wait_seconds()
        CIRCUIT.set(breaker.state)
        if wait > 0:
            await asyncio.sleep(wait)
            continue
        attempt += 1
        try:
            async with _calls:
                IN_FLIGHT.inc()
                try:
                    with CONTROLLER_LATENCY.labels(endpoint).time():
                        reply = await controller().call(endpoint, fields)
                finally:
                    IN_FLIGHT.dec()
        except TransientError as exc:
            breaker.record_failure()
            CONTROLLER_CALLS.labels(endpoint, "transient", "").inc()
            RETRIES.labels(endpoint).inc()
            delay = backoff_delay(attempt, exc.retry_after)
            log.warning(
                'controller call will be retried endpoint="%s" attempt=%d error="%s" delay=%.2f',
                endpoint,
                attempt,
                type(exc).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            if stop_when_lost:
                return None, attempt
            continue
        except PermanentError as exc:
            breaker.record_success()  # the Controller answered: it is up
            CONTROLLER_CALLS.labels(endpoint, "rejected", str(exc.error_code or "")).inc()
            return exc, attempt
        finally:
            CIRCUIT.set(breaker.state)
        breaker.record_success()
        CONTROLLER_CALLS.labels(endpoint, "applied", "").inc()
        return reply, attempt


async def _journal(command_id: str, entry: dict[str, Any]) -> None:
    """Write a journal entry; return once Kafka has it (``streams.durable``).

    An intent is durable before the call it announces. An outcome is written after
    everything it vouches for (the result, the session state, a dead letter) is
    durable, and before the key's next command starts: after a crash only a key's one
    in-flight command can be unsettled, and a ``done`` entry never outlives its effects.
    """
    await durable_set(journal, command_id, {**entry, "partition": current_partition()})


def _prune_journal(partition: int, now: datetime) -> None:
    """Once a day per partition: drop its ``done`` entries older than the retention.

    A command redelivered or re-sent by a vendor after that is no longer recognised by
    the journal (dedupe still drops a second create of a session at any time), so the
    retention (``PARKSTREAM_JOURNAL_RETENTION_DAYS``, at least 1) must outlast any
    redelivery and any vendor retry. The scan is of the whole table, once a day.
    """
    today = now.date()
    if _journal_pruned_on.get(partition) == today:
        return
    _journal_pruned_on[partition] = today
    stale = expired(journal.items(), partition, now, JOURNAL_RETENTION)  # read before deleting
    for command_id in stale:
        del journal[command_id]  # a tombstone in this partition's changelog
    JOURNAL_PRUNED.inc(len(stale))
    if stale:
        log.info('journal pruned partition=%d entries=%d day="%s"', partition, len(stale), today)


async def _session_update(session_id: str | None, **changes: Any) -> None:
    """Record what became of a session; return once Kafka has it."""
    if session_id is None:
        return
    state = dict(sessions.get(session_key(session_id)) or {})
    state.update(changes, at=datetime.now(UTC).isoformat())
    await durable_set(sessions, session_key(session_id), state)


async def _record_result(message: Any, result: dict[str, Any]) -> None:
    """Publish a result; return once Kafka has it."""
    await acknowledged(
        results_topic.send(key=message.key, value=codec().encode("ControllerResult", result))
    )
    EVENTS_PRODUCED.labels("results").inc()


async def _reconcile_push(fields: dict[str, Any]) -> bool:
    """True when the Controller already shows the interrupted push's permit."""
    answer, _ = await call_until_answered("validate/plate", {"plate": fields["plate"]})
    if not isinstance(answer, ControllerReply):
        return False
    return push_visible(plate_permits(answer.body), fields["end_time"], UTC)


async def apply_command(event: faust.EventT) -> None:
    """Apply one command and record its outcome; never raises for bad input."""
    message = event.message
    try:
        _, command = codec().decode(message.value, expected="ControllerCommand")
    except DecodeError as exc:
        await send_dead_letter(message, dead_letter(message, "undecodable", error_message=str(exc)))
        return
    command_id, endpoint, session_id = (
        command["command_id"],
        command["endpoint"],
        command["session_id"],
    )
    if endpoint == RESOLVE_ENDPOINT:
        # An operator's answer for a session in doubt: the Controller's reference id.
        await _session_update(
            session_id, state="delivered", controller_ref=command["body"]["controller_ref"]
        )
        await _journal(command_id, done_entry(datetime.now(UTC), "resolved"))
        log.info('session resolved session_id="%s"', session_id)
        return
    step = next_step(journal.get(command_id), endpoint)
    if step is Step.SKIP:
        RECONCILED.labels("skipped").inc()
        log.info('command already done command_id="%s"', command_id)
        return
    session = sessions.get(session_key(session_id)) if session_id else None
    if endpoint in ("permits/update", "permits/delete"):
        held = await _held_for_session(message, command, session)
        if held:
            return
    try:
        fields = call_fields(command, (session or {}).get("controller_ref"))
    except ContractError as exc:
        await send_dead_letter(
            message,
            dead_letter(message, "schema_violation", exc.code, exc.message, command_id),
        )
        await _journal(command_id, done_entry(datetime.now(UTC), "rejected", exc.code))
        return

    if step is Step.CALL:
        await _journal(command_id, intent_entry(datetime.now(UTC)))
    attempts = 0
    while True:
        if step is Step.RECONCILE_PUSH and await _reconcile_push(fields):
            await _mark_in_doubt(session_id, command_id)
            return
        if step is not Step.CALL:
            RECONCILED.labels("pushed_again" if step is Step.RECONCILE_PUSH else "reapplied").inc()
        answer, attempts = await call_until_answered(
            endpoint, fields, attempt=attempts, stop_when_lost=True
        )
        if answer is not None:
            break
        step = resend_step(endpoint)  # the answer was lost: the call may have been applied
    now = datetime.now(UTC)
    if isinstance(answer, PermanentError) and pushed_before(step, answer.error_code):
        await _mark_in_doubt(session_id, command_id)
        return
    if isinstance(answer, PermanentError) and not applied_before(step, endpoint, answer.error_code):
        rejected = answer if isinstance(answer, ControllerRejected) else None
        reason = "controller_rejected" if rejected else type(answer).__name__
        await send_dead_letter(
            message, dead_letter(message, reason, answer.error_code, answer.reason, command_id)
        )
        if rejected is not None:
            await _record_result(
                message, result_record(command, fields, attempts, rejected=rejected)
            )
        if endpoint == "permits/push":
            await _session_update(
                session_id,
                state="dead_lettered",
                error_code=answer.error_code,
                error_message=answer.reason,
            )
        await _journal(command_id, done_entry(now, "rejected", answer.error_code))
        return
    reply = answer if isinstance(answer, ControllerReply) else None
    recorded = [_record_result(message, result_record(command, fields, attempts, reply=reply))]
    if endpoint == "permits/push" and reply is not None and reply.reference_id:
        recorded.append(
            _session_update(session_id, state="delivered", controller_ref=reply.reference_id)
        )
    elif endpoint == "permits/delete":
        recorded.append(_session_update(session_id, state="deleted"))
    await asyncio.gather(*recorded)  # both acknowledged before the journal says done
    if command.get("accepted_at") is not None:
        END_TO_END.observe(max(0.0, (now - command["accepted_at"]).total_seconds()))
    await _journal(command_id, done_entry(now, "applied"))
    log.info(
        'command applied endpoint="%s" command_id="%s" attempts=%d',
        endpoint,
        command_id,
        attempts,
    )


async def _mark_in_doubt(session_id: str | None, command_id: str) -> None:
    """The interrupted push was applied, but the Controller cannot tell us its reference."""
    IN_DOUBT.inc()
    RECONCILED.labels("in_doubt").inc()
    await _session_update(session_id, state="in_doubt")
    await _journal(command_id, done_entry(datetime.now(UTC), "in_doubt"))
    log.warning(
        'push in doubt: the Controller has the permit but not its reference session_id="%s" '
        'command_id="%s"',
        session_id,
        command_id,
    )


async def _held_for_session(
    message: Any, command: dict[str, Any], session: dict[str, Any] | None
) -> bool:
    """Dead-letter an update/delete that cannot be translated; True when it was."""
    state = (session or {}).get("state")
    if state == "in_doubt":
        reason, code, text = "in_doubt", None, "session in doubt: awaiting the Controller reference"
    elif not (session or {}).get("controller_ref"):
        reason, code, text = "controller_reference_unknown", 9009, "Record not found."
    else:
        return False
    await send_dead_letter(message, dead_letter(message, reason, code, text, command["command_id"]))
    # Held once: a redelivery must not hold it again, or a replay would apply it twice.
    await _journal(command["command_id"], done_entry(datetime.now(UTC), "held", code))
    return True


@app.agent(commands_topic)
async def dispatch(stream: faust.StreamT) -> None:
    """Feed commands to the keyed scheduler; acknowledge deliveries only in order."""
    tracker = DeliveryTracker()
    unacked: dict[int, faust.EventT] = {}

    async def work(item: tuple[int, faust.EventT]) -> None:
        delivery, event = item
        # Faust writes a table key to the partition of the "current event"; a key's runner
        # task outlives the event it started with, so name each command's event explicitly.
        token = _current_event.set(weakref.ref(event))
        try:
            await apply_command(event)
            _prune_journal(event.message.partition, datetime.now(UTC))
        finally:
            _current_event.reset(token)
        for done in tracker.finished(event.message.tp, delivery):
            unacked.pop(done).ack()

    def failed(exc: BaseException) -> None:
        # Unacknowledged commands would never be redelivered to a restarted agent, so
        # stop the whole worker: it restarts from the committed offsets.
        log.error('dispatcher failed; stopping the worker error="%s"', exc)
        app.loop.create_task(app.crash(exc))

    # As many keys in flight as calls. Measured: 4x as many keys (journal writes overlapping
    # calls) gave +50% throughput, but a rebalance must first finish every delivered command,
    # which then outlasted the session timeout: partitions moved while the old owner still
    # wrote, and 56 of 1,666 sessions ended in doubt after one kill (tests/e2e/test_crash.py).
    keys = settings.controller_concurrency
    scheduler: KeyedScheduler[tuple[int, faust.EventT]] = KeyedScheduler(
        work, keys, max_outstanding=keys * 2, on_failure=failed
    )
    try:
        async for event in stream.noack().events():
            EVENTS_CONSUMED.labels("commands").inc()
            delivery = tracker.received(event.message.tp)
            unacked[delivery] = event
            await scheduler.submit(event.key, (delivery, event))
    except Exception as exc:
        failed(exc)
        raise
    finally:
        await scheduler.cancel()


@app.on_before_shutdown.connect
async def _close_controller(app: faust.App, **kwargs: Any) -> None:
    if _controller is not None:
        await _controller.aclose()
