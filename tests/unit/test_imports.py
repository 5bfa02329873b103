"""Importing a module reads no environment and starts nothing (docs/architecture.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from foundation.settings import env_documentation

PACKAGES = (
    "schemas",
    "foundation",
    "producers",
    "streams",
    "consumers",
    "sandbox",
    "parkstream",
    "dashboards",
)

# Imports every module of PACKAGES and prints their names; a module that fails is reported.
SCRIPT = """
import importlib, json, pkgutil, sys
failed, imported = {}, []
for package in sys.argv[1:]:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except BaseException as exc:
            failed[info.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"imported": imported, "failed": failed}))
"""


def test_every_module_imports_with_nonsense_in_every_parkstream_variable():
    nonsense = {variable: "no-such-value:%%" for variable, _ in env_documentation()}
    nonsense |= {
        "PARKSTREAM_SANDBOX_JOURNAL_SIZE": "many",
        "PARKSTREAM_SANDBOX_FAULT_LATENCY_MS": "fast",
        "PARKSTREAM_SANDBOX_TIMEZONE": "Mars/Olympus",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *PACKAGES],
        env={**env, **nonsense},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    # The worker's modules are among them, not skipped.
    assert {
        "streams.planning",
        "consumers.dispatch",
        "foundation.worker.app",
        "parkstream.worker",
    } <= set(report["imported"])
