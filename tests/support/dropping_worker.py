"""The real worker, except that its consumer drops one fetched batch, as Faust's can.

Run as ``python -m tests.support.dropping_worker worker`` with the worker's environment.
Faust's ``Consumer.getmany`` stops handing a fetched batch over when the group's
generation changes meanwhile (a rebalance); the fetch position is already past the
records it did not hand over, so they are never fetched again by themselves. Here the
first batch holding a parking-session record is dropped from that record on, the same way,
and ``DROPPED <n>`` is printed. Everything else is ``parkstream worker``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

from foundation.settings import Settings
from foundation.worker.app import _Consumer
from parkstream.worker import run_worker


def drop_one_batch(topic_suffix: str) -> None:
    original = _Consumer.getmany
    done = [False]

    async def getmany(self: Any, timeout: float) -> AsyncIterator[Any]:
        dropped = 0
        async for tp, message in original(self, timeout):
            if not done[0] and (dropped or tp.topic.endswith(topic_suffix)):
                dropped += 1  # this record and the rest of its batch, as Faust's `break`
                continue
            yield tp, message
        if dropped:
            done[0] = True
            print(f"DROPPED {dropped}", flush=True)

    _Consumer.getmany = getmany  # type: ignore[method-assign]


if __name__ == "__main__":
    assert sys.argv[1:] == ["worker"], "usage: python -m tests.support.dropping_worker worker"
    drop_one_batch("parkstream.sessions.v1")
    run_worker(Settings.from_env())
