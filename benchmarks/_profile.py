"""Where a benchmarked process spends its CPU: py-spy's samples of it, grouped.

``sample(pid, path)`` starts ``py-spy record`` on a running process (raw collapsed stacks,
``function (file:line)`` per frame, root first); ``stop`` makes it write ``path``;
``shares(path, groups)`` is the fraction of the samples in each group. A group is a name
and the markers (parts of a frame's text) of its frames. Two ways to give a sample a group:

* ``nearest=False``: the first group, in the order given, that any frame of the sample
  belongs to (a coarse split where one group's frames contain another's);
* ``nearest=True``: the group of the frame nearest the sample's leaf that belongs to any
  group (the code that was running, whoever called it: an event loop's own work counts
  as the event loop, a JSON encoder called by the store as JSON).

py-spy is in the ``bench`` extra; without it ``sample`` returns ``None``. Without the right
to trace the process, py-spy writes no file; either way ``shares`` returns ``None`` and the
benchmarks say so.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

Groups = Sequence[tuple[str, Sequence[str]]]


def sample(pid: int, path: Path, rate: int = 20) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` at ``rate`` Hz into ``path``, if installed."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "-o", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(spy: subprocess.Popen[bytes] | None) -> None:
    """Stop ``spy``: py-spy writes its file when interrupted."""
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)


def stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """``(frames, samples)`` per distinct stack of a raw py-spy file, root frame first."""
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if number.isdigit():
            yield stack.split(";"), int(number)


def _group(frames: list[str], groups: Groups, nearest: bool) -> str | None:
    if nearest:
        for frame in reversed(frames):
            for name, markers in groups:
                if any(marker in frame for marker in markers):
                    return name
        return None
    for name, markers in groups:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return None


def shares(path: Path, groups: Groups, nearest: bool = False) -> dict[str, float] | None:
    """The fraction of ``path``'s samples in each of ``groups`` (``"other"``: in none), or
    ``None`` when there is no profile."""
    if not path.exists():
        return None
    counts = dict.fromkeys([name for name, _ in groups] + ["other"], 0)
    for frames, number in stacks(path):
        counts[_group(frames, groups, nearest) or "other"] += number
    total = sum(counts.values())
    return {name: n / total for name, n in counts.items()} if total else None
