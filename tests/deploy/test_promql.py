"""Prometheus' own checker (promtool, Debian package prometheus) on the scrape configuration,
the alert rules and every query of the Grafana dashboard (wrapped as recording rules), and the
alert rules' unit tests (deploy/prometheus/alerts.test.yml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, load_json, load_yaml
from tests.deploy.test_dashboard import panels

PROMETHEUS = DEPLOY / "prometheus"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail(
            "promtool is needed: apt-get install --no-install-recommends prometheus "
            "(.ci/run installs it)",
            pytrace=False,
        )
    return subprocess.run(
        [tool, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_are_valid() -> None:
    checked = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_scrape_configuration_is_valid(tmp_path: Path) -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    # The container path of the rules file, pointed at the file in the repository.
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", "--syntax-only", str(copy))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:panel_{panel['id']}_{target['refId'].lower()}",
            "expr": target["expr"],
        }
        for panel in panels(load_json(DEPLOY / "grafana" / "dashboards" / "onboarding.json"))
        for target in panel.get("targets", [])
    ]
    assert rules
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def alert_names() -> list[str]:
    return [
        rule["alert"]
        for group in load_yaml(PROMETHEUS / "alerts.yml")["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def alert_checks() -> list[tuple[str, str, bool]]:
    """Each check of alerts.test.yml: (test name, alert, whether it expects the alert to fire)."""
    return [
        (test["name"], check["alertname"], bool(check.get("exp_alerts")))
        for test in load_yaml(ALERT_TESTS)["tests"]
        for check in test.get("alert_rule_test", [])
    ]


def test_the_alert_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", str(ALERT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_unit_tests_read_the_rules_of_the_repository() -> None:
    # promtool resolves rule_files from the test file's directory.
    assert load_yaml(ALERT_TESTS)["rule_files"] == ["alerts.yml"]


def test_every_alert_is_shown_to_fire() -> None:
    fired = {alert for _, alert, fires in alert_checks() if fires}
    assert sorted(set(alert_names()) - fired) == []


def test_one_healthy_system_is_shown_to_raise_no_alert() -> None:
    quiet_in: dict[str, set[str]] = {}
    for test, alert, fires in alert_checks():
        if not fires:
            quiet_in.setdefault(test, set()).add(alert)
    assert any(alerts >= set(alert_names()) for alerts in quiet_in.values()), quiet_in


def test_the_unit_tests_fail_when_an_alert_does_not_fire(tmp_path: Path) -> None:
    """promtool reports a missing alert as a failure: the test above can fail."""
    rules = load_yaml(PROMETHEUS / "alerts.yml")
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "ServiceDown":
                rule["expr"] = 'up{job="no-such-job"} == 0'
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "alerts.test.yml").write_text(ALERT_TESTS.read_text())
    tested = promtool("test", "rules", str(tmp_path / "alerts.test.yml"))
    assert tested.returncode != 0
    assert "ServiceDown" in tested.stdout + tested.stderr
