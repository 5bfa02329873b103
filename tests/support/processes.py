"""Run parkstream processes (``parkstream gateway`` ...) as a production deployment would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from foundation.broker import wait_for_port


class ParkstreamProcess:
    """``parkstream <command>`` in a child process with the given environment; logs to a file."""

    def __init__(
        self,
        command: str,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        module: str = "parkstream.cli",
    ):
        self.command = command
        self.module = module
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False  # stopped on purpose (``stop``), not exited by itself

    def start(self, timeout: float = 60.0) -> ParkstreamProcess:
        out = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        if self.port is not None:
            deadline = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.command} exited {self.proc.returncode}:\n{self.log()}"
                    )
                try:
                    wait_for_port("127.0.0.1", self.port, timeout=0.5)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
        return self

    @property
    def exited_by_itself(self) -> bool:
        """It ended without being stopped: a crash, or the stall watchdog's exit 70."""
        return self.proc is not None and self.proc.poll() is not None and not self.stopped

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait; returns the exit code (killed after ``timeout``)."""
        self.stopped = True
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
