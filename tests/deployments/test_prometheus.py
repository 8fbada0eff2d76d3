"""The alert rules in deployments/prometheus: valid for Prometheus, their unit tests (every rule
firing and not firing) pass under promtool, and they, like the Grafana dashboard's queries, name
only metrics that /metrics serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from reelroute.models.reporting.metrics import HistogramFamily, read_metrics

RULES = Path(__file__).resolve().parents[2] / "deployments" / "prometheus"
DASHBOARD = RULES.parent / "grafana"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run(
        [found, *args], cwd=RULES, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rules_are_valid():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_rule_fires_and_stays_quiet_as_its_unit_tests_say():
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"][0]["rules"]
    tests = yaml.safe_load((RULES / "alerts_test.yml").read_text())["tests"]
    checked = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    names = {rule["alert"] for rule in rules}
    assert checked == firing == quiet == names  # each rule fires in a test, and stays quiet in one


def served_names(session) -> set[str]:
    served = set()
    for family in read_metrics(session):
        if isinstance(family, HistogramFamily):
            served |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            served.add(family.name + ("_total" if family.kind == "counter" else ""))
    return served


def test_the_rules_name_only_served_metrics(session):
    text = (RULES / "alerts.yml").read_text()
    named = set(re.findall(r"\breelroute_[a-z0-9_]+", text))
    assert named and named <= served_names(session), named - served_names(session)


def test_the_dashboards_queries_are_valid_and_use_only_served_metrics(session, tmp_path):
    dashboard = json.loads((DASHBOARD / "reelroute.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    # Each query as a recording rule: promtool parses its PromQL.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": query}
                    for n, query in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard.yml").write_text(json.dumps(rules))
    checked = promtool("check", "rules", str(tmp_path / "dashboard.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    named = {name for query in queries for name in re.findall(r"\breelroute_[a-z0-9_]+", query)}
    assert named <= served_names(session), named - served_names(session)
    assert len(dashboard["panels"]) >= 10
