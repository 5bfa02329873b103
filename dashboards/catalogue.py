"""The metrics catalogue (docs/metrics.md) and the names a PromQL expression uses.

Dashboards and alert rules may name only catalogued metrics and their labels; the tests check
both with these functions.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"

# Clauses whose parentheses hold label names, not expressions.
_GROUPING = ("by", "without", "on", "ignoring", "group_left", "group_right")
# Words that may stand where a metric name could, without being one.
_OPERATOR_WORDS = frozenset(
    {"or", "and", "unless", "offset", "bool", "atan2", "inf", "nan", "group_left", "group_right"}
)
_ROW = re.compile(r"^\| `(parkstream_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", re.MULTILINE)


@cache
def catalogue(path: Path = CATALOGUE) -> dict[str, tuple[str, frozenset[str]]]:
    """Metric name -> (type, labels), from the table rows of docs/metrics.md."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for name, kind, labels in _ROW.findall(path.read_text(encoding="utf-8")):
        if name in found:
            raise ValueError(f"{path.name} lists {name} twice")
        found[name] = (kind, frozenset(re.findall(r"`([a-z_]+)`", labels)))
    return found


@cache
def series_names(path: Path = CATALOGUE) -> dict[str, frozenset[str]]:
    """Every series name the catalogued metrics expose -> its labels.

    A histogram ``X`` is exposed as ``X_bucket`` (with ``le``), ``X_sum`` and ``X_count``.
    """
    exposed: dict[str, frozenset[str]] = {}
    for name, (kind, labels) in catalogue(path).items():
        if kind == "histogram":
            exposed[f"{name}_bucket"] = labels | {"le"}
            exposed[f"{name}_sum"] = labels
            exposed[f"{name}_count"] = labels
        else:
            exposed[name] = labels
    return exposed


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses.

    A small scanner, not a parser: enough for selectors, matchers, grouping clauses, ranges,
    subqueries and offsets, which is all the dashboards and rules use.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels: set[str] = set()
    grouping = re.compile(rf"\b({'|'.join(_GROUPING)})\s*\(([^)]*)\)")
    for _, names in grouping.findall(text):
        labels.update(n.strip() for n in names.split(",") if n.strip())
    text = grouping.sub(" ", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    metrics = {
        token
        for token, call in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text)
        if not call and token not in _OPERATOR_WORDS
    }
    return metrics, labels


def unknown_names(expr: str, path: Path = CATALOGUE) -> list[str]:
    """What in ``expr`` the catalogue does not know: metrics, then labels; empty when fine."""
    exposed = series_names(path)
    metrics, labels = promql_names(expr)
    problems = [f"metric {m}" for m in sorted(metrics - set(exposed))]
    known_labels = set().union(*(exposed.get(m, frozenset()) for m in metrics))
    problems += [f"label {label}" for label in sorted(labels - known_labels)]
    if not metrics:
        problems.append("no metric at all")
    return problems
