"""Prometheus' own checker (promtool, Debian package prometheus) on the scrape configuration,
the alert rules and every query of the Grafana dashboard (wrapped as recording rules)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, load_json, load_yaml
from tests.deploy.test_dashboard import panels

PROMETHEUS = DEPLOY / "prometheus"


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
