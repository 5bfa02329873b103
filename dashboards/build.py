"""Write every parkstream dashboard as JSON for the Helm chart.

python -m dashboards.build            # writes helm/parkstream/dashboards/<uid>.json
python -m dashboards.build --check    # exits 1 when a committed file differs from a build
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import overview, zones
from dashboards.catalogue import unknown_names

OUT_DIR = Path(__file__).resolve().parent.parent / "helm" / "parkstream" / "dashboards"

# uid -> builder; the uid is also the file name and part of the ConfigMap name.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    overview.UID: overview.build,
    zones.UID: zones.build,
}


def _numbered(model: dict[str, Any]) -> dict[str, Any]:
    """Give panels stable ids 1..n in grid order, so a rebuild yields the same JSON."""
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return model


def _check_queries(uid: str, model: dict[str, Any]) -> None:
    """Refuse a query naming a metric or label docs/metrics.md does not catalogue."""
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            problems = unknown_names(target["expr"])
            if problems:
                raise ValueError(
                    f"{uid} / {panel['title']}: not in docs/metrics.md: {', '.join(problems)}"
                )


def render(uid: str) -> str:
    """The JSON text of one dashboard, keys sorted, ending in a newline."""
    model = _numbered(json.loads(JSONEncoder().encode(DASHBOARDS[uid]().build())))
    _check_queries(uid, model)
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    return {f"{uid}.json": render(uid) for uid in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="directory to write to")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out, write nothing"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python -m dashboards.build)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
