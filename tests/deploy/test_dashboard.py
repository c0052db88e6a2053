"""The Grafana dashboard, the alert rules and deploy/grafana/expected-metrics.txt agree: every
metric queried is listed with its exporter, and every listed metric is queried. Gauges that
every replica reads from the same database rows are never summed across replicas."""

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
# Label names can look like metric names (rabbitmq_node): where PromQL puts them, in selectors'
# braces and in groupings, they are blanked before metric names are looked for.
LABEL_LISTS = re.compile(
    r"\{[^{}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
)
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
TYPES = {"counter", "gauge", "histogram", "summary"}
EXPORTERS = {*SERVICES, "rabbitmq"}
# How the series of several replicas add up (expected-metrics.txt, last column): "own" parts are
# summed; a "shared" value is the same in every replica (read from the database), so a query
# takes one of them with max or min: three replicas summed would show three times the truth.
REPLICAS = {"own", "shared"}
ONE_OF_THE_REPLICAS = {"max", "min"}
AGGREGATIONS = (
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
)  # fmt: skip
# An aggregation operator right before an opening parenthesis, once groupings are blanked
# ("sum by (queue) (" reads "sum            ("); max_over_time( is a function, not one.
AGGREGATION_BEFORE = re.compile(rf"\b({'|'.join(AGGREGATIONS)})\s*$")
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
    replicas: str


def expected_metrics() -> dict[str, Expected]:
    metrics: dict[str, Expected] = {}
    for number, raw in enumerate(EXPECTED.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        assert len(fields) == 5, f"line {number}: name type exporters labels replicas"
        name, kind, exporters, labels, replicas = fields
        assert name not in metrics, f"line {number}: {name} listed twice"
        metrics[name] = Expected(
            name=name,
            type=kind,
            exporters=frozenset(exporters.split(",")),
            labels=frozenset() if labels == "-" else frozenset(labels.split(",")),
            replicas=replicas,
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


def family(name: str, expected: dict[str, Expected]) -> str:
    """The listed metric a series name belongs to (a histogram's _bucket, _sum and _count)."""
    for suffix in HISTOGRAM_SERIES:
        stem = name.removesuffix(suffix)
        known = expected.get(stem)
        if stem != name and known is not None and known.type == "histogram":
            return stem
    return name


def blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def without_labels(expression: str) -> str:
    """The expression with its strings and label lists blanked, every position kept. A
    blanked grouping leaves "sum   (", which AGGREGATION_BEFORE still reads as an aggregation."""
    return LABEL_LISTS.sub(blank, STRING.sub(blank, expression))


def metric_names(expression: str, expected: dict[str, Expected]) -> set[str]:
    """The metric names a PromQL expression reads (histogram series map to their family)."""
    return {family(name, expected) for name in METRIC.findall(without_labels(expression))}


def aggregations_around(
    expression: str, expected: dict[str, Expected]
) -> list[tuple[str, str | None]]:
    """Each metric an expression reads, with the innermost aggregation operator around it
    (None when it is not aggregated). Parentheses are matched, labels blanked first."""
    text = without_labels(expression)
    tokens = sorted(
        [(m.start(), m.group()) for m in re.finditer(r"[()]", text)]
        + [(m.start(), m.group()) for m in METRIC.finditer(text)]
    )
    enclosing: list[str | None] = []
    found = []
    for start, token in tokens:
        if token == "(":
            before = AGGREGATION_BEFORE.search(text[:start])
            enclosing.append(before.group(1) if before else None)
        elif token == ")":
            enclosing.pop()
        else:
            innermost = next((op for op in reversed(enclosing) if op is not None), None)
            found.append((family(token, expected), innermost))
    return found


def shared_gauges_not_deduplicated(expression: str, expected: dict[str, Expected]) -> list[str]:
    """The shared gauges an expression reads other than through max or min across replicas."""
    return [
        f"{name} under {operator or 'no aggregation'}"
        for name, operator in aggregations_around(expression, expected)
        if name in expected
        and expected[name].replicas == "shared"
        and operator not in ONE_OF_THE_REPLICAS
    ]


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
        assert metric.replicas in REPLICAS, metric
        if metric.replicas == "shared":
            assert metric.type == "gauge", f"{metric.name}: only a gauge can be read, not counted"


def test_the_gauges_read_from_the_database_are_marked_shared() -> None:
    # The services set these from a database query, the same in every replica:
    # onboarding_invitations (invitations' status_gauge_refresher) and the outbox gauges
    # (onboarding_shared.runtime.refresh_outbox_gauges, every service).
    expected = expected_metrics()
    shared = {metric.name for metric in expected.values() if metric.replicas == "shared"}
    assert shared == {
        "onboarding_invitations",
        "onboarding_outbox_pending",
        "onboarding_outbox_oldest_pending_age_seconds",
    }


def test_every_metric_the_dashboard_queries_is_listed_and_every_listed_one_is_queried() -> None:
    expected = expected_metrics()
    on_dashboard = queried(dashboard_expressions(), expected)
    assert sorted(on_dashboard - set(expected)) == [], "queried but not in expected-metrics.txt"
    assert sorted(set(expected) - on_dashboard) == [], "listed but not on the dashboard"


def test_every_metric_the_alerts_query_is_listed() -> None:
    expected = expected_metrics()
    assert sorted(queried(alert_expressions(), expected) - set(expected)) == []


@pytest.mark.parametrize(
    ("expression", "problems"),
    [
        ("sum by (status) (onboarding_invitations)", ["onboarding_invitations under sum"]),
        ("sum(onboarding_outbox_pending) by (service)", ["onboarding_outbox_pending under sum"]),
        ("onboarding_outbox_pending > 0", ["onboarding_outbox_pending under no aggregation"]),
        (
            "max_over_time(onboarding_outbox_pending[5m])",
            ["onboarding_outbox_pending under no aggregation"],
        ),
        ("max by (status) (onboarding_invitations)", []),
        ("sum(max by (service) (onboarding_outbox_pending))", []),
        ("max by (service) (onboarding_outbox_oldest_pending_age_seconds) > 60", []),
        ('sum(rate(onboarding_messages_total{queue="sum(onboarding_invitations)"}[5m]))', []),
    ],
)
def test_the_shared_gauge_check_tells_sums_from_maxima(
    expression: str, problems: list[str]
) -> None:
    assert shared_gauges_not_deduplicated(expression, expected_metrics()) == problems


def test_no_query_sums_a_gauge_every_replica_reads_from_the_database() -> None:
    expected = expected_metrics()
    problems = {
        expression: found
        for expression in dashboard_expressions() + alert_expressions()
        if (found := shared_gauges_not_deduplicated(expression, expected))
    }
    assert problems == {}, "take max by (...) of a shared gauge, never sum"


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
