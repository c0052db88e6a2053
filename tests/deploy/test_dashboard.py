"""The Grafana dashboard, the alert rules and deploy/grafana/expected-metrics.txt agree: every
metric queried is listed with its exporter, and every listed metric is queried."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, SERVICES, load_json, load_yaml

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "onboarding.json"
EXPECTED = DEPLOY / "grafana" / "expected-metrics.txt"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
OUR_PREFIXES = ("onboarding_", "rabbitmq_")
METRIC = re.compile(r"\b(?:onboarding|rabbitmq)_[a-zA-Z0-9_]+\b")
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
TYPES = {"counter", "gauge", "histogram", "summary"}
EXPORTERS = {*SERVICES, "rabbitmq"}
REQUIRED_TOPICS = (
    "queue depth",
    "consumers per queue",
    "publish and deliver",
    "parked",
    "invitations by status",
    "emails sent and failed",
    "activation latency",
    "outbox",
)


@dataclass(frozen=True)
class Expected:
    name: str
    type: str
    exporters: frozenset[str]
    labels: frozenset[str]


def expected_metrics() -> dict[str, Expected]:
    metrics: dict[str, Expected] = {}
    for number, raw in enumerate(EXPECTED.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        assert len(fields) == 4, f"line {number}: name type exporters labels"
        name, kind, exporters, labels = fields
        assert name not in metrics, f"line {number}: {name} listed twice"
        metrics[name] = Expected(
            name=name,
            type=kind,
            exporters=frozenset(exporters.split(",")),
            labels=frozenset() if labels == "-" else frozenset(labels.split(",")),
        )
    return metrics


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> list[str]:
    return [
        target["expr"]
        for panel in panels(load_json(DASHBOARD))
        for target in panel.get("targets", [])
    ]


def alert_expressions() -> list[str]:
    return [str(rule["expr"]) for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def metric_names(expression: str, expected: dict[str, Expected]) -> set[str]:
    """The metric names a PromQL expression reads (histogram series map to their family)."""
    names = set()
    for name in METRIC.findall(STRING.sub('""', expression)):
        for suffix in HISTOGRAM_SERIES:
            family = name.removesuffix(suffix)
            known = expected.get(family)
            if family != name and known is not None and known.type == "histogram":
                name = family
        names.add(name)
    return names


def queried(expressions: list[str], expected: dict[str, Expected]) -> set[str]:
    return set().union(*(metric_names(e, expected) for e in expressions))


def test_the_list_is_well_formed() -> None:
    expected = expected_metrics()
    assert expected
    for metric in expected.values():
        assert metric.name.startswith(OUR_PREFIXES), metric.name
        assert metric.type in TYPES, metric
        assert metric.exporters <= EXPORTERS, metric
        if metric.type == "counter":
            assert metric.name.endswith("_total"), f"{metric.name}: counters end in _total"
        if metric.name.startswith("onboarding_"):
            assert "rabbitmq" not in metric.exporters


def test_every_metric_the_dashboard_queries_is_listed_and_every_listed_one_is_queried() -> None:
    expected = expected_metrics()
    on_dashboard = queried(dashboard_expressions(), expected)
    assert sorted(on_dashboard - set(expected)) == [], "queried but not in expected-metrics.txt"
    assert sorted(set(expected) - on_dashboard) == [], "listed but not on the dashboard"


def test_every_metric_the_alerts_query_is_listed() -> None:
    expected = expected_metrics()
    assert sorted(queried(alert_expressions(), expected) - set(expected)) == []


def test_histograms_are_read_through_their_series() -> None:
    expected = expected_metrics()
    text = " ".join(dashboard_expressions())
    for metric in expected.values():
        if metric.type == "histogram":
            assert f"{metric.name}_bucket" in text
            assert re.search(rf"\b{metric.name}\b(?!_)", text) is None, "query the _bucket series"


def test_labels_used_in_groupings_are_listed() -> None:
    expected = expected_metrics()
    for expression in dashboard_expressions():
        names = metric_names(expression, expected)
        for grouping in re.findall(r"\bby \(([^)]*)\)", expression):
            labels = {label.strip() for label in grouping.split(",")} - {"le", "service"}
            known = set().union(*(expected[name].labels for name in names))
            assert labels <= known, f"{expression}: {labels - known} not listed"


def test_the_dashboard_shows_what_operators_need() -> None:
    titles = " | ".join(panel["title"].lower() for panel in panels(load_json(DASHBOARD)))
    missing = [topic for topic in REQUIRED_TOPICS if topic not in titles]
    assert missing == []


QUERY_PANELS = [panel for panel in panels(load_json(DASHBOARD)) if panel["type"] != "row"]


@pytest.mark.parametrize("panel", QUERY_PANELS, ids=lambda p: p["title"])
def test_each_panel_reads_the_provisioned_datasource(panel: dict[str, Any]) -> None:
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasources["datasources"][0]["uid"]
    assert panel["datasource"]["uid"] == uid
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == uid
        assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
