"""Each worker process needs a data dir of its own (its RocksDB files): a second worker on the
same one stops at start with one line naming the variable, instead of failing mid-rebalance."""

import os
import subprocess
import sys

from foundation.settings import Settings
from parkstream.worker import claim_data_dir


def test_a_second_worker_on_the_same_data_dir_stops_at_start_naming_the_variable(tmp_path):
    held = claim_data_dir(Settings(data_dir=tmp_path))  # the first worker
    try:
        done = subprocess.run(
            [sys.executable, "-m", "parkstream.cli", "worker"],
            env={
                **os.environ,
                "PARKSTREAM_DATA_DIR": str(tmp_path),
                "PARKSTREAM_CONTROLLER_API_TOKEN": "tok",
                # No broker is reached: the data dir is claimed first.
                "PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        held.close()
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"parkstream: bad setting: PARKSTREAM_DATA_DIR={tmp_path}:")
    assert "another worker process uses it" in line


def test_the_data_dir_is_free_again_once_its_worker_is_gone(tmp_path):
    claim_data_dir(Settings(data_dir=tmp_path)).close()
    claim_data_dir(Settings(data_dir=tmp_path)).close()
