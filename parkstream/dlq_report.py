"""``parkstream dlq``: look at dead letters, send them back after a fix, resolve sessions in doubt.

    parkstream dlq list    [--code N] [--reason R] [--since T]    a table, oldest first
    parkstream dlq replay  [--code N] [--reason R] [--since T]    send the chosen ones back,
                                                                 each at most once; never a
                                                                 push in doubt
    parkstream dlq resolve REF --controller-ref ID | --not-in-controller   a session in doubt

Exit codes: 0 done (``list``: also when empty), 1 nothing matched the filters for
``replay``, 2 usage errors. What replaying guarantees is in docs/delivery.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from consumers.deadletters import (
    DeadLetterEntry,
    dead_letters,
    read_dead_letters,
    replay,
    resolve,
    select,
    settled,
)
from foundation.settings import Settings

NOTHING_MATCHED = 1
USAGE = 2


def _since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (YYYY-MM-DD[THH:MM:SS]): {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_dlq_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="dlq_action", required=True)
    for name, help_ in (
        ("list", "show dead letters as a table"),
        ("replay", "send dead letters back to their topics (each applied at most once)"),
    ):
        action = actions.add_parser(name, help=help_)
        action.add_argument("--code", type=int, help="only this Controller ErrorCode")
        action.add_argument("--reason", help="only this reason, e.g. controller_rejected")
        action.add_argument("--since", type=_since, help="only those that failed since (UTC)")
    resolve_ = actions.add_parser("resolve", help="give a session in doubt its Controller id")
    resolve_.add_argument("reference_id", metavar="REF", help="the parkstream reference id")
    found = resolve_.add_mutually_exclusive_group(required=True)
    found.add_argument("--controller-ref", help="the permit's reference id in the Controller")
    found.add_argument(
        "--not-in-controller",
        action="store_true",
        help="the Controller does not have the permit: push it (once), then what it held",
    )


def table(
    entries: list[DeadLetterEntry], done: dict[tuple[int, int], DeadLetterEntry] | None = None
) -> str:
    """The dead letters as an aligned text table; ``done``: what was replayed or resolved.

    The message is shown whole: for a push in doubt it says what to look for in the
    Controller (plate, zone, start and end, ticket number).
    """
    done = done or {}
    headers = ("failed at (UTC)", "reason", "code", "from", "key", "since", "message")
    rows = [
        (
            e.record["failed_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            e.record["reason"],
            "" if e.record["error_code"] is None else str(e.record["error_code"]),
            f"{e.record['topic']}[{e.record['partition']}]@{e.record['offset']}",
            (e.key or b"").decode(errors="replace"),
            done[(e.partition, e.offset)].record["reason"]
            if (e.partition, e.offset) in done
            else "",
            " ".join((e.record["error_message"] or "").split()),
        )
        for e in entries
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run_dlq(settings: Settings, args: argparse.Namespace) -> int:
    """Carry out ``parkstream dlq ...``; return the exit code."""
    if args.dlq_action == "resolve":
        replayed = resolve(settings, args.reference_id, args.controller_ref)  # None: not found
        print(f"resolved {args.reference_id}; {replayed} held command(s) replayed behind it")
        return 0
    everything = read_dead_letters(settings)
    chosen = select(dead_letters(everything), code=args.code, reason=args.reason, since=args.since)
    if args.dlq_action == "list":
        print(table(chosen, settled(everything)) if chosen else "no dead letters match")
        return 0
    if not chosen:
        print("no dead letters match; nothing replayed", file=sys.stderr)
        return NOTHING_MATCHED
    result = replay(settings, chosen, everything)
    print(f"replayed {len(result.sent)} dead letter(s)")
    if result.already:
        print(
            f"skipped {len(result.already)} already replayed or resolved (each is sent once): "
            + ", ".join(f"dlq[{e.partition}]@{e.offset}" for e in result.already),
            file=sys.stderr,
        )
    if result.in_doubt:
        print(
            f"skipped {len(result.in_doubt)} push(es) in doubt: the Controller may have them; "
            "find each in the Controller, then `parkstream dlq resolve REF --controller-ref ID`",
            file=sys.stderr,
        )
    return 0
