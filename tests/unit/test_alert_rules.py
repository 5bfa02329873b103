"""The Prometheus alert rules (helm/parkstream/rules/parkstream.rules.yml), checked and unit-tested
by promtool: Prometheus' own rule parser and PromQL engine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards.catalogue import unknown_names

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "helm" / "parkstream" / "rules"
RULES = RULES_DIR / "parkstream.rules.yml"
RULE_TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))

# The situations the brief asks an operator to be woken for, by alert name.
REQUIRED_ALERTS = {
    "ParkstreamControllerErrorRate",  # Controller error rate by code above a threshold
    "ParkstreamDeadLetters",  # dead letters appearing
    "ParkstreamCircuitOpen",  # circuit open
    "ParkstreamConsumerLagGrowing",  # consumer lag growing
    "ParkstreamGatewayUnavailable",  # gateway 503 / unavailable answers
    "ParkstreamNoThroughput",  # no throughput while vendors send
}


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alerts_with_tests() -> set[str]:
    names = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            names.update(case["alertname"] for case in test.get("alert_rule_test", []))
    return names


def alerts_made_to_fire() -> set[str]:
    """Alerts some unit test expects to fire (not only to stay quiet)."""
    names = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    names.add(case["alertname"])
    return names


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not found: `make system-deps` installs it (Debian package prometheus)"
        )
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, cwd=RULES_DIR
    )


def test_promtool_accepts_the_rules_file(promtool):
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    assert RULE_TESTS, "no rule unit tests in helm/parkstream/rules/tests/"
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_can_fail(promtool, tmp_path):
    """A promtool test run against a rules file whose thresholds are out of reach fails."""
    broken = RULES.read_text(encoding="utf-8").replace("> 0.05", "> 50").replace("== 2", "== 20")
    (tmp_path / "parkstream.rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    for path in RULE_TESTS:
        (tmp_path / "tests" / path.name).write_text(path.read_text(encoding="utf-8"))
    result = subprocess.run(
        [promtool, "test", "rules", *(str(tmp_path / "tests" / p.name) for p in RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ParkstreamControllerErrorRate" in result.stdout + result.stderr
    assert "ParkstreamCircuitOpen" in result.stdout + result.stderr


def test_the_required_alerts_exist():
    assert {rule["alert"] for rule in alerts()} >= REQUIRED_ALERTS


def test_every_alert_has_a_unit_test_that_makes_it_fire():
    names = {rule["alert"] for rule in alerts()}
    assert names <= alerts_with_tests()
    assert names <= alerts_made_to_fire()


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_names_a_severity_and_tells_what_to_do(rule):
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_uses_only_catalogued_metrics_and_labels(rule):
    assert unknown_names(rule["expr"]) == []
