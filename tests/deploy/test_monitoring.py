"""Monitoring in both set-ups: compose's scrape configuration and the Kubernetes component
(deploy/k8s/components/monitoring: a ServiceMonitor and a PrometheusRule) give the alert rules
the labels they rely on, and the PrometheusRule holds exactly the rules of alerts.yml."""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    DEPLOY,
    SERVICES,
    kubectl,
    load_yaml,
    schema_errors,
    validator,
)

COMPONENT = DEPLOY / "k8s" / "components" / "monitoring"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
# The base with the component, as an environment overlay uses it.
TEST_OVERLAY = Path(__file__).resolve().parent / "monitoring"
SCHEMAS = {
    "ServiceMonitor": "monitoring-servicemonitor.json",
    "PrometheusRule": "monitoring-prometheusrule.json",
}
RABBITMQ_ALARMS = (
    "rabbitmq_alarms_memory_used_watermark",
    "rabbitmq_alarms_free_disk_space_watermark",
)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kustomize failed for {directory}:\n{result.stderr}", pytrace=False)
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(TEST_OVERLAY))


def one(kind: str) -> dict[str, Any]:
    found = [document for document in rendered() if document["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for group in load_yaml(ALERTS)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


# --- the Kubernetes component ---------------------------------------------------------------


def test_the_component_is_a_kustomize_component_without_transformers() -> None:
    kustomization = load_yaml(COMPONENT / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"
    assert kustomization["resources"] == ["servicemonitor.yaml", "prometheusrule.yaml"]
    # A Component's transformers act on the whole overlay it joins (its Deployments too).
    transformers = {"labels", "commonLabels", "commonAnnotations", "patches", "namespace"}
    assert transformers.isdisjoint(kustomization)


def test_the_prometheus_rule_holds_exactly_the_groups_of_alerts_yml() -> None:
    committed = load_yaml(COMPONENT / "prometheusrule.yaml")
    assert committed["spec"]["groups"] == load_yaml(ALERTS)["groups"], (
        "copy the groups: block of deploy/prometheus/alerts.yml into prometheusrule.yaml"
    )
    assert one("PrometheusRule")["spec"]["groups"] == load_yaml(ALERTS)["groups"]


def test_the_component_adds_its_two_objects_and_changes_nothing_else(tmp_path: Path) -> None:
    # The test overlay without the component, rendered the same way.
    base = os.path.relpath(DEPLOY / "k8s" / "base", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "namespace: onboarding\n"
        f"resources: [{base}]\n"
    )
    without = kustomize(tmp_path)
    added = [document for document in rendered() if document not in without]
    assert sorted(document["kind"] for document in added) == sorted(SCHEMAS)
    assert len(rendered()) == len(without) + len(SCHEMAS)


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_the_component_objects_are_valid_and_in_the_overlay_namespace(kind: str) -> None:
    document = one(kind)
    assert schema_errors(validator(SCHEMAS[kind]), document) == []
    assert document["metadata"]["namespace"] == "onboarding"
    assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == "onboarding"


def test_the_schemas_catch_mistakes() -> None:
    monitor = one("ServiceMonitor")
    broken = {
        **monitor,
        "spec": {
            **monitor["spec"],
            "endpoints": [{"port": "http", "path": "metrics", "intervall": "15s"}],
        },
    }
    errors = schema_errors(validator(SCHEMAS["ServiceMonitor"]), broken)
    assert any("intervall" in error for error in errors), errors
    assert any(error.startswith("spec/endpoints/0/path") for error in errors), errors
    rule = one("PrometheusRule")
    group = {"name": "g", "rules": [{"alert": "A", "record": "a:b", "expr": "1"}]}
    broken = {**rule, "spec": {"groups": [group, {"name": "h", "rules": [{"alert": "B"}]}]}}
    errors = schema_errors(validator(SCHEMAS["PrometheusRule"]), broken)
    assert any(error.startswith("spec/groups/0/rules/0") for error in errors), errors
    assert any(error.startswith("spec/groups/1/rules/0") for error in errors), errors


def test_the_service_monitor_scrapes_the_four_services_on_their_metrics_port() -> None:
    monitor = one("ServiceMonitor")
    services = {
        document["metadata"]["name"]: document
        for document in rendered()
        if document["kind"] == "Service"
    }
    selected = {
        name
        for name, service in services.items()
        if selects(monitor["spec"]["selector"], service["metadata"].get("labels", {}))
    }
    assert selected == set(SERVICES)
    # Without a namespaceSelector the operator looks in the monitor's own namespace.
    assert "namespaceSelector" not in monitor["spec"]
    assert {s["metadata"]["namespace"] for s in services.values()} == {"onboarding"}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics/"
    deployments = {d["metadata"]["name"]: d for d in rendered() if d["kind"] == "Deployment"}
    for name in SERVICES:
        service_port = {port["name"]: port for port in services[name]["spec"]["ports"]}
        assert service_port[endpoint["port"]]["targetPort"] == "http"
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        container_ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert container_ports["http"] == SERVICES[name][1]


def test_the_service_monitor_labels_targets_as_the_alert_rules_expect() -> None:
    monitor = one("ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    # service: from the Service's app.kubernetes.io/name, which is the service's name.
    relabelings = endpoint["relabelings"]
    service_label = [r for r in relabelings if r.get("targetLabel") == "service"]
    assert service_label == [
        {
            "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_name"],
            "targetLabel": "service",
        }
    ]
    for document in rendered():
        if document["kind"] == "Service" and document["metadata"]["name"] in SERVICES:
            labels = document["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == document["metadata"]["name"]
            # job: the jobLabel's value, "onboarding" as under compose.
            assert labels[monitor["spec"]["jobLabel"]] == "onboarding"


# --- the alert rules and the labels they need -------------------------------------------------


def matchers(expression: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) of every label matcher in an expression."""
    return re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:\\.|[^"\\])*)"', expression)


def test_no_alert_rule_depends_on_a_job_name() -> None:
    # Compose's job names differ from the ones ServiceMonitors and PodMonitors give.
    for name, rule in alert_rules().items():
        assert [m for m in matchers(str(rule["expr"])) if m[0] == "job"] == [], name
        assert "$labels.job" not in str(rule.get("annotations", {})), name


def test_the_service_alerts_cover_every_service() -> None:
    rules = alert_rules()
    down = [
        value for label, _, value in matchers(rules["ServiceDown"]["expr"]) if label == "service"
    ]
    assert len(down) == 1 and set(down[0].split("|")) == set(SERVICES)
    absent = re.findall(r'absent\(up\{service="([^"]+)"\}\)', rules["ServiceNotScraped"]["expr"])
    assert sorted(absent) == sorted(SERVICES)


def test_compose_labels_every_service_target_with_its_service() -> None:
    jobs = {job["job_name"]: job for job in load_yaml(SCRAPE_CONFIG)["scrape_configs"]}
    labelled = {
        target: group.get("labels", {}).get("service")
        for job in jobs.values()
        for group in job.get("static_configs", [])
        for target in group["targets"]
    }
    for name, (_, port) in SERVICES.items():
        assert labelled[f"{name}:{port}"] == name


def keeps(relabelings: list[dict[str, Any]], metric: str) -> bool:
    """Whether metric_relabel_configs of keep/drop actions on __name__ let a metric through
    (Prometheus anchors the regex at both ends)."""
    for relabeling in relabelings:
        assert relabeling["source_labels"] == ["__name__"]
        matched = re.fullmatch(relabeling["regex"], metric) is not None
        if relabeling["action"] == "keep" and not matched:
            return False
        if relabeling["action"] == "drop" and matched:
            return False
    return True


def test_compose_scrapes_the_broker_per_queue_and_its_alarms_once() -> None:
    jobs = load_yaml(SCRAPE_CONFIG)["scrape_configs"]
    broker = [
        job
        for job in jobs
        if any("rabbitmq:15692" in group["targets"] for group in job.get("static_configs", []))
    ]
    paths = {job.get("metrics_path", "/metrics"): job for job in broker}
    assert set(paths) == {"/metrics/per-object", "/metrics"}
    # RabbitMQ 4.1 (compose's) serves the alarms on the aggregated endpoint only; the rest of
    # that endpoint would duplicate the per-object series.
    node = paths["/metrics"].get("metric_relabel_configs", [])
    for alarm in RABBITMQ_ALARMS:
        assert keeps(node, alarm)
    for duplicate in ("rabbitmq_global_messages_received_total", "rabbitmq_queue_messages_ready"):
        assert not keeps(node, duplicate)
    assert keeps(
        paths["/metrics/per-object"].get("metric_relabel_configs", []), "rabbitmq_identity_info"
    )
