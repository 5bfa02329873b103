"""Run the benchmarks: ``python -m benchmarks [name ...]`` (default: all of them).

A benchmark is any module ``benchmarks/<name>.py`` (name not starting with ``_``)
that defines ``main()``; each prints its own results. The exit status is 1 if
any benchmark raised.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import benchmarks


def discover() -> dict[str, Callable[[], object]]:
    """``{name: main}`` for every benchmark module, sorted by name."""
    found: dict[str, Callable[[], object]] = {}
    for module_info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if module_info.ispkg or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{benchmarks.__name__}.{module_info.name}")
        entry = getattr(module, "main", None)
        if callable(entry):
            found[module_info.name] = entry
    return found


def main(argv: Sequence[str] = ()) -> int:
    available = discover()
    names = list(argv) or list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available)}")
        return 2
    failed = []
    for name in names:
        print(f"== benchmarks.{name} ==", flush=True)
        started = time.perf_counter()
        try:
            available[name]()
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"== benchmarks.{name}: {time.perf_counter() - started:.1f} s ==\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
