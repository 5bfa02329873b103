"""The dispatcher agent: applies each ``ControllerCommand`` to the Controller exactly once.

Commands of one key (one parking session) are applied strictly in order; different
keys run concurrently, up to ``PARKSTREAM_CONTROLLER_CONCURRENCY`` calls in flight
(``consumers.scheduler``). Offsets are acknowledged only as an unbroken prefix of
commands whose outcome is recorded (``foundation.worker.ordering``), so a crash can only
redeliver, never skip. A redelivered command is recognised by its journal entry
(``consumers.journal``) and never applied twice.

Every command runs under the lease of its partition (``foundation.worker.ownership``): at a
revocation no call starts any more, calls under way finish and record their outcome
within the drain bound, and an owner that lost the partition can neither call nor
write for it.

Transient failures are retried with backoff and jitter for as long as they last; when
they persist the circuit opens (``consumers.retry``): calls stop, the scheduler fills,
the agent stops reading, and the backlog waits in Kafka. Nothing is dead-lettered for an
outage. A permanent failure (a Controller ``ErrorCode``, an undecodable or invalid
command) goes to ``dlq.v1`` at once with its code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import faust
from prometheus_client import Counter, Gauge, Histogram

from consumers.apply import call_fields, result_record
from consumers.deadletters import RESOLVE_ENDPOINT
from consumers.journal import (
    Lookup,
    Step,
    applied_before,
    done_entry,
    expired,
    intent_entry,
    next_step,
    push_lookup,
    pushed_before,
    resend_step,
)
from consumers.retry import CircuitBreaker, CircuitState, backoff_delay
from consumers.scheduler import KeyedScheduler
from consumers.sessions import expired_sessions, session_key
from foundation.controller import ControllerClient, ControllerReply
from foundation.errors import ControllerRejected, PermanentError, TransientError
from foundation.worker.app import EVENTS_CONSUMED, EVENTS_PRODUCED, WorkerApp, dead_letter
from foundation.worker.durable import (
    acknowledged_all,
    durable_delete,
    durable_prune,
    durable_set,
    send_table_writes,
    sent,
)
from foundation.worker.ordering import InOrderAcks
from foundation.worker.ownership import Lease, Revoked
from foundation.worker.pipeline import delivered, unacked_events
from foundation.worker.stores import partition_items
from schemas.avro import DecodeError, codec
from schemas.controller import ContractError, plate_permits
from schemas.status import SessionState

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
REPEATED_PUSHES = Counter(
    "parkstream_repeated_pushes_total",
    "Pushes of a session the Controller already has (delivered or deleted), not sent again.",
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
    "Pushes whose outcome the Controller could not confirm: maybe applied, reference unknown.",
)
ABANDONED = Counter(
    "parkstream_commands_abandoned_total",
    "Commands given up at a revocation or stop before their outcome was recorded "
    "(redelivered to the partition's next owner).",
)
for _endpoint in ("permits/push", "permits/update", "permits/delete"):
    for _outcome in ("applied", "rejected", "transient"):
        CONTROLLER_CALLS.labels(_endpoint, _outcome, "")
    RETRIES.labels(_endpoint)
for _outcome in ("skipped", "reapplied", "pushed_again", "in_doubt"):
    RECONCILED.labels(_outcome)

# Transient failures a validate/plate lookup may meet before the push is declared in doubt.
LOOKUP_ATTEMPTS = 5

# Keys (sessions) in flight per Controller call slot. More than one lets other keys use a
# slot while one key's journal writes wait for Kafka; measured, 4 cost more CPU per command
# than it saved in waiting on this CPU-bound worker, so it is 1 (BENCHMARKS.md, "What issue
# 15's directions gave").
KEYS_PER_CALL_SLOT = 1

# Applying these twice has the effect of applying them once (docs/delivery.md): a crash or a
# lost answer just sends them again, so they are called without a journal intent.
IDEMPOTENT = frozenset({"permits/update", "profiles/push"})


def _count_result(ack: asyncio.Future[Any]) -> None:
    """A result counts as produced once Kafka acknowledged it."""
    if not ack.cancelled() and ack.exception() is None:
        EVENTS_PRODUCED.labels("results").inc()


def in_doubt_details(command: dict[str, Any], fields: dict[str, Any], why: str) -> str:
    """What an operator needs to find an in-doubt push's permit in the Controller."""

    def shown(value: Any) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""

    return (
        f"push in doubt ({why}): plate={fields.get('plate', '')} zone={fields.get('zone') or ''} "
        f"start={shown(fields.get('start_time'))} end={shown(fields.get('end_time'))} "
        f"permit_no={fields.get('permit_no') or ''} vendor={command.get('vendor', '')}"
    )


@dataclass(frozen=True)
class _Call:
    """A command ready for its Controller call: the record, the decoded command, the call's
    fields, and the journal's step for it (a first call, or a re-send)."""

    message: Any
    command: dict[str, Any]
    fields: dict[str, Any]
    step: Step


class CallAbandoned(Revoked):
    """The lease ended before the Controller gave a final answer; ``calls_made``: how many
    requests of this command had left by then (0: none, so none can have been applied)."""

    def __init__(self, tp: Any, calls_made: int) -> None:
        super().__init__(tp)
        self.calls_made = calls_made


class Dispatcher:
    """The dispatcher of one worker: its tables, its Controller client and circuit.

    ``journal``: command id -> ``{"state": "intent" | "done", ...}``; keyed writes land in
    the partition of the command being processed, so the journal is co-partitioned with
    the commands.

    ``sessions``: parkstream reference id (as bytes: ``session_key``) -> ``{"controller_ref",
    "state", "at", "error_code", ...}``: what became of each session, and the Controller's
    reference id learned from its push. Bytes keys are stored raw, the same bytes as the
    commands topic's key: /sessions/{ref} is routed by hashing the serialized key. With
    str keys Faust serializes them as JSON ('"ps-..."'), which hashed to another
    partition for about two keys in three, and the request reached a worker without the
    session (404).
    """

    def __init__(self, worker: WorkerApp, controller: ControllerClient | None = None) -> None:
        settings = worker.settings
        self.worker = worker
        self.settings = settings
        self.journal = worker.table("journal", key_type=str)
        self.sessions = worker.table("sessions", key_type=bytes)
        self.journal_retention = timedelta(days=settings.journal_retention_days)
        self.session_retention = timedelta(days=settings.session_retention_days)
        self.clock = worker.clock
        self.controller_timezone = ZoneInfo(settings.controller_timezone)
        self.breaker = CircuitBreaker()
        self._controller = controller
        # At most PARKSTREAM_CONTROLLER_CONCURRENCY calls in flight (reconciliation included).
        self._calls = asyncio.Semaphore(settings.controller_concurrency)
        self._pruned_on: dict[int, date] = {}
        self.acks = worker.track("dispatch", InOrderAcks())

    def controller(self) -> ControllerClient:
        """The worker's one pooled Controller client (created on first use)."""
        if self._controller is None:
            self._controller = ControllerClient.from_settings(
                self.settings, max_connections=self.settings.controller_concurrency
            )
        return self._controller

    async def aclose(self) -> None:
        """Close the Controller client (at the worker's shutdown)."""
        if self._controller is not None:
            await self._controller.aclose()

    async def call_until_answered(
        self,
        endpoint: str,
        fields: dict[str, Any],
        lease: Lease,
        *,
        attempt: int = 0,
        stop_when_lost: bool = False,
        announced: bool = False,
    ) -> tuple[ControllerReply | PermanentError | None, int]:
        """Call until the Controller gives a final answer: a reply, or a permanent error.

        Transient failures are retried, through the circuit breaker, for as long as they
        last. Returns the final answer and the number of calls made so far (``attempt``
        counts the earlier ones). With ``stop_when_lost``, returns ``None`` instead of
        retrying once a call that reached the Controller failed transiently (after its
        backoff): that call may have been applied, and the caller re-sends it by the
        journal's rules. A call that never left (no connection could be made) is simply
        made again. Raises ``Revoked`` as soon as the lease stops being valid before a call
        (a wait is cut short). ``announced``: the first call's intent is durable, so that
        call is under way and is made while the lease drains (a revocation that began
        while the intent was acknowledged waits for it): only a void lease stops it.
        """
        try:
            while True:
                wait = self.breaker.wait_seconds()
                CIRCUIT.set(self.breaker.state)
                if wait > 0:
                    await lease.sleep(wait)
                    continue
                try:
                    async with self._calls:
                        # Checked once the call has its slot: the wait for one may outlast the lease.
                        if announced:
                            lease.check_write()
                        else:
                            lease.check_call()
                        attempt += 1
                        announced = False  # a retry is a new call: a drain stops it
                        self.worker.watchdog.progressed()
                        IN_FLIGHT.inc()
                        try:
                            with CONTROLLER_LATENCY.labels(endpoint).time():
                                reply = await self.controller().call(endpoint, fields)
                        finally:
                            IN_FLIGHT.dec()
                            self.worker.watchdog.progressed()
                except TransientError as exc:
                    self.breaker.record_failure()
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
                    await lease.sleep(delay)
                    if stop_when_lost and not exc.never_sent:
                        return None, attempt
                    continue
                except PermanentError as exc:
                    self.breaker.record_success()  # the Controller answered: it is up
                    CONTROLLER_CALLS.labels(endpoint, "rejected", str(exc.error_code or "")).inc()
                    return exc, attempt
                except BaseException:
                    self.breaker.release_probe()  # no answer either way: let another call probe
                    raise
                finally:
                    CIRCUIT.set(self.breaker.state)
                self.breaker.record_success()
                CONTROLLER_CALLS.labels(endpoint, "applied", "").inc()
                return reply, attempt
        except Revoked as exc:
            # ``attempt`` counts every request made so far, this command's earlier ones too.
            raise CallAbandoned(lease.tp, attempt) from exc

    async def _journal(self, command_id: str, entry: dict[str, Any], lease: Lease) -> None:
        """Write a journal entry; return once Kafka has it (``foundation.worker.durable``).

        An intent is durable before the call it announces. An outcome is written after
        everything it vouches for (the result, the session state, a dead letter) is
        durable, and before the key's next command starts: after a crash only a key's one
        in-flight command can be unsettled, and a ``done`` entry never outlives its effects.
        """
        await durable_set(self.journal, command_id, {**entry, "partition": lease.partition}, lease)

    async def _prune(self, lease: Lease, busy: Callable[[bytes], bool]) -> None:
        """Once a day per partition, drop what the retention settings let go.

        The journal's ``done`` entries older than ``PARKSTREAM_JOURNAL_RETENTION_DAYS`` (a
        command redelivered after that is no longer recognised: the retention must outlast
        any redelivery), and the settled sessions whose permit ended more than
        ``PARKSTREAM_SESSION_RETENTION_DAYS`` ago (``consumers.sessions``). Sessions with a
        command queued or under way (``busy``) wait for the next day, so no command reads a
        session whose deletion is on its way. Runs in the dispatcher's reading loop, which
        starts no command until the deletions are acknowledged.
        """
        now = self.clock()
        partition, today = lease.partition, now.date()
        if self._pruned_on.get(partition) == today:
            return
        self._pruned_on[partition] = today
        stale = expired(
            partition_items(self.journal, partition), partition, now, self.journal_retention
        )
        sessions = [
            key
            for key in expired_sessions(
                partition_items(self.sessions, partition), now, self.session_retention
            )
            if not busy(key)
        ]
        await durable_prune(self.journal, stale, lease)
        await durable_prune(self.sessions, sessions, lease)
        if stale or sessions:
            log.info(
                'tables pruned partition=%d journal=%d sessions=%d day="%s"',
                partition,
                len(stale),
                len(sessions),
                today,
            )

    async def _prune_under(self, lease: Lease, busy: Callable[[bytes], bool]) -> None:
        """``_prune`` as part of the partition's work (a revocation waits for it, a void
        lease skips it)."""
        try:
            lease.check_call()
            with lease.working():
                await self._prune(lease, busy)
        except Revoked:
            return

    async def _session_update(self, session_id: str | None, lease: Lease, **changes: Any) -> None:
        """Record what became of a session; return once Kafka has it."""
        await acknowledged_all(await self._send_session_update(session_id, lease, **changes))

    async def _send_session_update(
        self, session_id: str | None, lease: Lease, **changes: Any
    ) -> list[asyncio.Future[Any]]:
        """Send what became of a session; return its acknowledgement (none: no session)."""
        if session_id is None:
            return []
        state = dict(self.sessions.get(session_key(session_id)) or {})
        state.update(changes, at=self.clock().isoformat())
        return await send_table_writes(self.sessions, [(session_key(session_id), state)], lease)

    async def _record_result(self, message: Any, result: dict[str, Any], lease: Lease) -> None:
        """Publish a result; return once Kafka has it."""
        await acknowledged_all([await self._send_result(message, result, lease)])

    async def _send_result(
        self, message: Any, result: dict[str, Any], lease: Lease
    ) -> asyncio.Future[Any]:
        """Publish a result; return its acknowledgement (counted once Kafka has it)."""
        sending = self.worker.results_topic.send(
            key=message.key, value=codec().encode("ControllerResult", result)
        )
        ack = await sent(sending, lease, "results")
        ack.add_done_callback(_count_result)
        return ack

    async def look_up_push(self, fields: dict[str, Any], lease: Lease) -> tuple[Lookup, str]:
        """Ask the Controller whether it has an interrupted push's permit (validate/plate).

        ``(verdict, why)``: ``SHOWN`` and ``ABSENT`` only from an answer that could have listed
        the permit; ``UNKNOWN`` when the Controller refused the lookup (an ErrorCode), kept
        failing while it answered other calls (``LOOKUP_ATTEMPTS`` transient failures with
        the circuit closed; an outage, which opens the circuit, is waited out like any
        other) or cannot show the permit (it is not active now: ended, or starting later).
        """
        attempts = failures = 0
        while True:
            answer, attempts = await self.call_until_answered(
                "validate/plate",
                {"plate": fields["plate"]},
                lease,
                attempt=attempts,
                stop_when_lost=True,
            )
            if answer is not None:
                break
            failures += self.breaker.state is CircuitState.CLOSED
            if failures >= LOOKUP_ATTEMPTS:
                return Lookup.UNKNOWN, f"validate/plate failed {failures} times in a row"
        if isinstance(answer, PermanentError):
            return Lookup.UNKNOWN, f"validate/plate refused: {answer}"
        try:
            permits = plate_permits(answer.body)
        except Exception as exc:  # any unreadable answer: no conclusion, never "absent"
            return Lookup.UNKNOWN, f"validate/plate answer unreadable: {type(exc).__name__}"
        verdict = push_lookup(
            permits,
            fields.get("start_time"),
            fields["end_time"],
            self.clock(),
            self.controller_timezone,
        )
        why = {
            Lookup.SHOWN: "the Controller shows a permit ending at its end time",
            Lookup.ABSENT: "the Controller shows no such permit",
            Lookup.UNKNOWN: "the permit is not active now, so validate/plate cannot show it",
        }[verdict]
        return verdict, why

    async def _mark_in_doubt(
        self, message: Any, command: dict[str, Any], fields: dict[str, Any], why: str, lease: Lease
    ) -> None:
        """The push may have been applied, but the Controller cannot tell us its reference.

        A dead letter (reason ``in_doubt``, what to look for in the Controller) for the push
        itself, then the session state, then the journal: ``parkstream dlq list --reason
        in_doubt`` shows it and ``parkstream dlq resolve`` settles it.
        """
        session_id, command_id = command["session_id"], command["command_id"]
        details = in_doubt_details(command, fields, why)
        await self.worker.send_dead_letter(
            message, dead_letter(message, "in_doubt", None, details, command_id), lease
        )
        await self._session_update(
            session_id,
            lease,
            state=SessionState.IN_DOUBT,
            error_code=None,
            error_message=details,
            plate=fields.get("plate"),
            zone=fields.get("zone"),
            end=fields["end_time"].isoformat() if fields.get("end_time") else None,
        )
        await self._journal(command_id, done_entry(self.clock(), "in_doubt"), lease)
        IN_DOUBT.inc()
        RECONCILED.labels("in_doubt").inc()
        log.warning('%s session_id="%s" command_id="%s"', details, session_id, command_id)

    async def _held_for_session(
        self, message: Any, command: dict[str, Any], session: dict[str, Any] | None, lease: Lease
    ) -> bool:
        """Dead-letter an update/delete that cannot be translated; True when it was."""
        state = (session or {}).get("state")
        if state == SessionState.IN_DOUBT:
            reason, code, text = (
                "in_doubt",
                None,
                "session in doubt: awaiting the Controller reference",
            )
        elif not (session or {}).get("controller_ref"):
            reason, code, text = "controller_reference_unknown", 9009, "Record not found."
        else:
            return False
        letter = dead_letter(message, reason, code, text, command["command_id"])
        await self.worker.send_dead_letter(message, letter, lease)
        # Held once: a redelivery must not hold it again, or a replay would apply it twice.
        await self._journal(command["command_id"], done_entry(self.clock(), "held", code), lease)
        return True

    async def _resolve(self, command: dict[str, Any], lease: Lease) -> None:
        """An operator's answer for a session in doubt: the Controller's reference id."""
        session_id = command["session_id"]
        await self._session_update(
            session_id,
            lease,
            state=SessionState.DELIVERED,
            controller_ref=command["body"]["controller_ref"],
            error_message=None,
        )
        await self._journal(command["command_id"], done_entry(self.clock(), "resolved"), lease)
        log.info('session resolved session_id="%s"', session_id)

    async def _settle_rejection(
        self,
        message: Any,
        command: dict[str, Any],
        fields: dict[str, Any],
        answer: PermanentError,
        attempts: int,
        lease: Lease,
    ) -> None:
        """A permanent refusal: dead letter, result, session state, then the journal."""
        rejected = answer if isinstance(answer, ControllerRejected) else None
        reason = "controller_rejected" if rejected else type(answer).__name__
        letter = dead_letter(
            message, reason, answer.error_code, answer.reason, command["command_id"]
        )
        await self.worker.send_dead_letter(message, letter, lease)
        if rejected is not None:
            await self._record_result(
                message, result_record(command, fields, attempts, rejected=rejected), lease
            )
        if command["endpoint"] == "permits/push":
            await self._session_update(
                command["session_id"],
                lease,
                state=SessionState.DEAD_LETTERED,
                error_code=answer.error_code,
                error_message=answer.reason,
            )
        await self._journal(
            command["command_id"],
            done_entry(self.clock(), "rejected", answer.error_code),
            lease,
        )

    async def _settle_applied(
        self,
        message: Any,
        command: dict[str, Any],
        fields: dict[str, Any],
        reply: ControllerReply | None,
        attempts: int,
        lease: Lease,
    ) -> None:
        """Applied: result and session state, both acknowledged before the journal says done
        (sent one after the other, their acknowledgements waited for together)."""
        endpoint, session_id = command["endpoint"], command["session_id"]
        now = self.clock()
        result = result_record(command, fields, attempts, reply=reply)
        acks = [await self._send_result(message, result, lease)]
        # The permit's end: the session's retention counts from it (consumers.sessions).
        end = fields["end_time"].isoformat() if fields.get("end_time") else None
        if endpoint == "permits/push" and reply is not None and reply.reference_id:
            acks += await self._send_session_update(
                session_id,
                lease,
                state=SessionState.DELIVERED,
                controller_ref=reply.reference_id,
                end=end,
            )
        elif endpoint == "permits/update" and end is not None:
            acks += await self._send_session_update(session_id, lease, end=end)
        elif endpoint == "permits/delete":
            acks += await self._send_session_update(session_id, lease, state=SessionState.DELETED)
        await acknowledged_all(acks)
        if command.get("accepted_at") is not None:
            END_TO_END.observe(max(0.0, (now - command["accepted_at"]).total_seconds()))
        await self._journal(command["command_id"], done_entry(now, "applied"), lease)
        log.debug(
            'command applied endpoint="%s" command_id="%s" attempts=%d',
            endpoint,
            command["command_id"],
            attempts,
        )

    async def _reconciled_step(
        self, message: Any, command: dict[str, Any], fields: dict[str, Any], lease: Lease
    ) -> bool:
        """Before re-sending an interrupted push: False when it was settled as in doubt.

        The push is sent again only when validate/plate answered, could have shown the
        permit and did not. With ``PARKSTREAM_RECONCILE_BY_PERMIT_NO`` a push with a ticket
        number is also sent again when the lookup cannot tell, trusting the Controller to
        refuse a repeated ticket number (9022, then: in doubt); see docs/delivery.md.
        """
        verdict, why = await self.look_up_push(fields, lease)
        if verdict is Lookup.ABSENT:
            return True
        if (
            verdict is Lookup.UNKNOWN
            and self.settings.reconcile_by_permit_no
            and fields.get("permit_no")
        ):
            return True
        await self._mark_in_doubt(message, command, fields, why, lease)
        return False

    async def apply_command(self, event: faust.EventT[Any], lease: Lease) -> None:
        """Apply one command and record its outcome; never raises for bad input.

        Three phases: what the command needs (``_prepare``: settled at once when no call
        is needed or possible), the call under the journal's rules (``_call``), and the
        outcome recorded (``_settle``). Raises ``Revoked`` when the lease ended before the
        outcome was recorded: nothing more is written, and the command is redelivered to
        the partition's next owner.
        """
        call = await self._prepare(event.message, lease)
        if call is None:
            return
        answered = await self._call(call, lease)
        if answered is not None:
            await self._settle(call, *answered, lease)

    async def _prepare(self, message: Any, lease: Lease) -> _Call | None:
        """The call a command needs, or ``None`` once it is settled without one: undecodable,
        an operator's resolution, already done (journal), held behind its session, or
        outside the contract."""
        try:
            _, command = codec().decode(message.value, expected="ControllerCommand")
        except DecodeError as exc:
            letter = dead_letter(message, "undecodable", error_message=str(exc))
            await self.worker.send_dead_letter(message, letter, lease)
            return None
        command_id, endpoint = command["command_id"], command["endpoint"]
        if endpoint == RESOLVE_ENDPOINT:
            await self._resolve(command, lease)
            return None
        step = next_step(self.journal.get(command_id), endpoint)
        if step is Step.SKIP:
            RECONCILED.labels("skipped").inc()
            log.debug('command already done command_id="%s"', command_id)
            return None
        session_id = command["session_id"]
        session = self.sessions.get(session_key(session_id)) if session_id else None
        if endpoint in ("permits/update", "permits/delete") and await self._held_for_session(
            message, command, session, lease
        ):
            return None
        if endpoint == "permits/push" and (session or {}).get("state") in (
            SessionState.DELIVERED,
            SessionState.DELETED,
        ):
            # A session has one push (dedupe drops a second create; this holds after its
            # entry's retention too): the Controller has this one, so it is not sent again.
            REPEATED_PUSHES.inc()
            log.info('push of a delivered session not sent again session_id="%s"', session_id)
            await self._journal(command_id, done_entry(self.clock(), "repeat"), lease)
            return None
        try:
            fields = call_fields(command, (session or {}).get("controller_ref"))
        except ContractError as exc:
            letter = dead_letter(message, "schema_violation", exc.code, exc.message, command_id)
            await self.worker.send_dead_letter(message, letter, lease)
            await self._journal(command_id, done_entry(self.clock(), "rejected", exc.code), lease)
            return None
        return _Call(message, command, fields, step)

    async def _call(
        self, call: _Call, lease: Lease
    ) -> tuple[Step, ControllerReply | PermanentError, int] | None:
        """Make the call by the journal's rules: ``(step, answer, attempts)``, or ``None`` when
        the push was settled as in doubt instead.

        A first call announces itself with a durable intent; an interrupted one (a crash,
        or an answer lost to a timeout or 5xx) is re-sent as ``consumers.journal`` says, a
        push only once the Controller showed it does not have it.
        """
        command, step = call.command, call.step
        endpoint = command["endpoint"]
        lease.check_call()  # a revoked command writes no intent
        # An idempotent command needs no intent: made again after a crash, it does no harm.
        announced = step is Step.CALL and endpoint not in IDEMPOTENT
        if announced:  # its intent, once durable, puts its call under way
            await self._journal(command["command_id"], intent_entry(self.clock()), lease)
        attempts = 0
        while True:
            if step is Step.RECONCILE_PUSH and not await self._reconciled_step(
                call.message, command, call.fields, lease
            ):
                return None
            if step is not Step.CALL:
                RECONCILED.labels(
                    "pushed_again" if step is Step.RECONCILE_PUSH else "reapplied"
                ).inc()
            try:
                answer, attempts = await self.call_until_answered(
                    endpoint,
                    call.fields,
                    lease,
                    attempt=attempts,
                    stop_when_lost=True,
                    announced=announced,
                )
            except CallAbandoned as abandoned:
                if announced and abandoned.calls_made == 0:
                    # Nothing left: the next owner may call it afresh, with no push to look up.
                    await durable_delete(self.journal, [command["command_id"]], lease)
                raise
            announced = False
            if answer is not None:
                return step, answer, attempts
            step = resend_step(endpoint)  # the answer was lost: the call may have been applied

    async def _settle(
        self,
        call: _Call,
        step: Step,
        answer: ControllerReply | PermanentError,
        attempts: int,
        lease: Lease,
    ) -> None:
        """Record the Controller's final answer: applied, refused, or (a re-sent push refused
        as a duplicate) in doubt."""
        message, command, fields = call.message, call.command, call.fields
        if isinstance(answer, PermanentError) and pushed_before(step, answer.error_code):
            why = "a re-sent push was refused as a duplicate (9022)"
            await self._mark_in_doubt(message, command, fields, why, lease)
        elif isinstance(answer, PermanentError) and not applied_before(
            step, command["endpoint"], answer.error_code
        ):
            await self._settle_rejection(message, command, fields, answer, attempts, lease)
        else:
            reply = answer if isinstance(answer, ControllerReply) else None
            await self._settle_applied(message, command, fields, reply, attempts, lease)

    async def dispatch(self, stream: faust.StreamT[Any]) -> None:
        """Feed commands to the keyed scheduler; acknowledge deliveries only in order."""
        worker = self.worker

        async def work(item: tuple[int, faust.EventT[Any], Lease]) -> None:
            delivery, event, lease = item
            try:
                lease.check_call()  # queued when its partition was revoked: never started
                with lease.working():
                    await self.apply_command(event, lease)
            except Revoked:
                ABANDONED.inc()
                return
            self.acks.finished(event, delivery)
            worker.watchdog.progressed()

        # A command holds a call slot only for its Controller call (``self._calls``); with
        # KEYS_PER_CALL_SLOT above 1, more keys are in flight than there are slots.
        keys = self.settings.controller_concurrency * KEYS_PER_CALL_SLOT
        scheduler: KeyedScheduler[tuple[int, faust.EventT[Any], Lease]] = KeyedScheduler(
            work, keys, max_outstanding=keys * 2, on_failure=worker.stop_worker
        )
        try:
            async for event in unacked_events(stream):
                EVENTS_CONSUMED.labels("commands").inc()
                delivery = await delivered(self.acks, event, worker.seek)
                if delivery is None:
                    continue
                lease = worker.ownership.lease(event.message.tp)
                await self._prune_under(lease, scheduler.busy)
                await scheduler.submit(event.key, (delivery, event, lease))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            worker.stop_worker(exc)
            raise
        finally:
            await scheduler.cancel()


def register(worker: WorkerApp) -> Dispatcher:
    """Add the dispatcher (agent ``dispatch``, tables ``journal`` and ``sessions``)."""
    dispatcher = Dispatcher(worker)

    async def dispatch(stream: faust.StreamT[Any]) -> None:
        """Apply each command to the Controller exactly once, in order per key."""
        await dispatcher.dispatch(stream)

    async def close_controller(sender: Any, *args: Any, **kwargs: Any) -> None:
        await dispatcher.aclose()

    worker.app.agent(worker.commands_topic, name=f"{__name__}.dispatch")(dispatch)
    worker.app.on_before_shutdown.connect(close_controller)  # type: ignore[arg-type]
    return dispatcher
