"""``parkstream worker``, with its writes counted and timed (``benchmarks._produce_count``).

Run as ``python -m benchmarks._counting_worker worker`` with the worker's environment, as
``benchmarks/throughput.py`` does. The counts are on the worker's ``/metrics``
(``parkstream_bench_produce_*``, ``parkstream_bench_ack_seconds``). Everything else is the real worker, started by the CLI.
"""

from __future__ import annotations

import sys

from benchmarks._produce_count import count_writes
from parkstream.cli import main

if __name__ == "__main__":
    count_writes()
    main(sys.argv[1:])
