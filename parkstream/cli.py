"""``parkstream`` command line: one sub-command per process of the stack.

parkstream dev        broker, sandbox, worker, gateway and demo traffic on one machine
parkstream gateway    the OPS-COM-compatible HTTP gateway (producers/gateway/)
parkstream worker     the Faust worker (streams/planning.py + consumers/dispatch.py)
parkstream sandbox    the offline Controller stand-in (sandbox/)
parkstream produce    load a JSON Lines or CSV file of permits, vehicles or profiles
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from foundation import logs
from foundation.settings import Settings, SettingsError

log = logging.getLogger("parkstream")


def _settings() -> Settings:
    settings = Settings.from_env()  # a SettingsError ends in one line (main)
    logs.configure(settings.log_level, settings.log_format)
    return settings


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a server coroutine until SIGTERM or Ctrl+C, then let it clean up and exit 0."""

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def cmd_gateway(_: argparse.Namespace) -> None:
    from producers.gateway import serve

    _run(serve(_settings()))  # a grant it cannot honour is a SettingsError (producers.gateway)


def cmd_sandbox(_: argparse.Namespace) -> None:
    from sandbox.app import SandboxConfig, serve

    settings = _settings()
    _run(serve("0.0.0.0", settings.sandbox_port, SandboxConfig.from_env()))


def cmd_worker(_: argparse.Namespace) -> None:
    settings = _settings()
    if not settings.controller_api_token:
        print(
            "parkstream: bad setting: PARKSTREAM_CONTROLLER_API_TOKEN is required", file=sys.stderr
        )
        raise SystemExit(2)
    from parkstream.worker import run_worker

    run_worker(settings)


def cmd_dev(args: argparse.Namespace) -> None:
    from parkstream.dev import run_dev

    raise SystemExit(run_dev(_settings(), demo_rate=args.demo_rate))


def cmd_produce(args: argparse.Namespace) -> None:
    from producers.files import run_produce

    raise SystemExit(
        run_produce(
            _settings(),
            args.file,
            kind=args.kind,
            vendor=args.vendor,
            fmt=args.format,
            rejects=args.rejects,
            receipts=args.receipts,
        )
    )


def cmd_stats(args: argparse.Namespace) -> None:
    from parkstream.stats_report import run_stats, zones_argument

    raise SystemExit(
        run_stats(
            _settings(),
            zones=zones_argument(args.zones),
            vendor=args.vendor,
            since=args.since,
            until=args.until,
            by=args.by,
            as_json=args.json,
            compare=args.compare,
            worker_url=args.worker_url,
        )
    )


def cmd_dlq(args: argparse.Namespace) -> None:
    from parkstream.dlq_report import run_dlq

    raise SystemExit(run_dlq(_settings(), args))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="parkstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("gateway", help="run the HTTP gateway").set_defaults(func=cmd_gateway)
    sub.add_parser("worker", help="run the Faust worker").set_defaults(func=cmd_worker)
    sub.add_parser("sandbox", help="run the Controller sandbox").set_defaults(func=cmd_sandbox)
    dev = sub.add_parser("dev", help="run the whole stack on this machine with demo traffic")
    dev.add_argument(
        "--demo-rate",
        type=float,
        default=2.0,
        help="demo permits pushed per second (0: none; default 2)",
    )
    dev.set_defaults(func=cmd_dev)
    produce = sub.add_parser(
        "produce",
        help="load a file of permits, vehicles or profiles (exit 0: all accepted, 1: not all)",
        description="Validate each line of FILE with the Controller's rules and publish the "
        "good ones to Kafka; bad lines go to the rejects file. Exit code 0 when every line "
        "was accepted, 1 when any was rejected or not delivered, 2 for usage errors.",
    )
    produce.add_argument("file", type=Path, metavar="FILE", help="a .jsonl or .csv file")
    produce.add_argument("--kind", required=True, choices=("permit", "vehicle", "profile"))
    produce.add_argument("--vendor", required=True, help="the vendor name on every event")
    produce.add_argument("--format", choices=("jsonl", "csv"), help="default: from FILE's name")
    produce.add_argument(
        "--rejects", type=Path, help="where bad lines go (default: FILE.rejects.jsonl)"
    )
    produce.add_argument(
        "--receipts", type=Path, help="also write each accepted line's reference id here"
    )
    produce.set_defaults(func=cmd_produce)
    from parkstream.dlq_report import add_dlq_arguments
    from parkstream.stats_report import add_stats_arguments

    stats = sub.add_parser(
        "stats",
        help="per-zone permits and revenue from the worker; --compare with the Controller",
    )
    add_stats_arguments(stats)
    stats.set_defaults(func=cmd_stats)
    dlq = sub.add_parser("dlq", help="list, replay or resolve dead letters (docs/delivery.md)")
    add_dlq_arguments(dlq)
    dlq.set_defaults(func=cmd_dlq)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SettingsError as exc:
        # A bad variable, or one found bad after start (a replication factor the cluster
        # lacks, a grant the gateway cannot honour): one line naming it, no traceback.
        print(f"parkstream: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
