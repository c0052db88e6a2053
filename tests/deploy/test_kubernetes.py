"""deploy/k8s: both overlays render with kustomize (kubectl from PyPI); every object is valid
against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields are errors) or,
for KEDA's and the prometheus-operator's, against structural schemas; and the objects fit
together as the README promises. The Ingress routes: test_public_routes.py."""

from __future__ import annotations

import copy
import importlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from devtools.gateway import ROUTES

from tests.deploy.support import (
    DEPLOY,
    GRACEFUL_TIMEOUT_DEFAULT,
    OVERLAYS,
    SERVICES,
    kubectl,
    objects,
    render,
    schema_errors,
    validator,
)

# The oldest Kubernetes release supported, and the newest whose schemas are bundled.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
CRD_SCHEMAS = {
    "ScaledObject": "keda-scaledobject.json",
    "TriggerAuthentication": "keda-triggerauthentication.json",
    "ServiceMonitor": "monitoring-servicemonitor.json",
    "PrometheusRule": "monitoring-prometheusrule.json",
}
SECRET = "onboarding-secrets"
NETWORK_POLICIES = (
    "default-deny",
    "allow-dns",
    "allow-broker-and-database",
    "allow-mailer-smtp",
    "allow-ingress-controller",
    "allow-metrics-scrape",
)
SCALED_BY_KEDA = {
    "mailer": {"mailer.invitations", "mailer.welcome-emails"},
    "auth-listener": {"auth-listener.logins"},
}


def kubernetes_errors(document: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(str(p) for p in error.path) or '(root)'}: {error.message}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_its_schema(overlay: str, version: str) -> None:
    problems = []
    for document in render(overlay):
        kind, name = document["kind"], document["metadata"]["name"]
        if kind in CRD_SCHEMAS:
            errors = schema_errors(validator(CRD_SCHEMAS[kind]), document)
        else:
            try:
                errors = kubernetes_errors(document, version)
            except kubernetes_validate.SchemaNotFoundError:
                errors = [f"no schema for {document['apiVersion']} {kind}"]
        problems += [f"{kind}/{name}: {error}" for error in errors]
    assert problems == []


def test_the_schema_checks_catch_mistakes() -> None:
    deployment = copy.deepcopy(objects("production", "Deployment")["users"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert kubernetes_errors(deployment, KUBERNETES_VERSIONS[0])
    scaled = copy.deepcopy(objects("production", "ScaledObject")["mailer"])
    scaled["spec"]["triggers"][0]["metadata"]["protocol"] = "amqp"
    scaled["spec"]["triggers"][0]["metadata"]["mode"] = "MessageRate"  # needs protocol http
    scaled["spec"]["maxReplicas"] = 3
    errors = schema_errors(validator("keda-scaledobject.json"), scaled)
    assert any("maxReplicas" in error for error in errors), errors
    assert any(error.startswith("spec/triggers/0/metadata/mode") for error in errors), errors


def test_both_overlays_contain_every_part() -> None:
    expected = {
        "Deployment": set(SERVICES),
        "Service": set(SERVICES),
        "PodDisruptionBudget": set(SERVICES),
        "Ingress": {"onboarding"},
        "NetworkPolicy": set(NETWORK_POLICIES),
        "ScaledObject": set(SCALED_BY_KEDA),
        "TriggerAuthentication": {"rabbitmq"},
    }
    for overlay in OVERLAYS:
        for kind, names in expected.items():
            assert set(objects(overlay, kind)) == names, (overlay, kind)


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def migration(workload: dict[str, Any]) -> dict[str, Any]:
    (init,) = workload["spec"]["template"]["spec"]["initContainers"]
    result: dict[str, Any] = init
    return result


def every_container(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    result: list[dict[str, Any]] = pod.get("initContainers", []) + pod["containers"]
    return result


def config(overlay: str) -> dict[str, str]:
    maps = objects(overlay, "ConfigMap")
    assert len(maps) == 1, "one ConfigMap, onboarding-config-<hash>"
    (config_map,) = maps.values()
    data: dict[str, str] = config_map["data"]
    return data


def check_secure(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    for each in every_container(workload):
        security = each["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in each.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a writable /tmp beside the read-only root"


def check_configured(workload: dict[str, Any], overlay: str, name: str) -> None:
    _, port = SERVICES[name]
    main = container(workload)
    config_map = next(iter(objects(overlay, "ConfigMap")))
    assert main["envFrom"] == [{"configMapRef": {"name": config_map}}]
    env = {item["name"]: item for item in main["env"]}
    assert env["HTTP_PORT"]["value"] == str(port)
    for item in env.values():
        if "valueFrom" in item:
            assert item["valueFrom"]["secretKeyRef"]["name"] == SECRET
    # One broker user per service: its own URL.
    amqp_key = env["AMQP_URL"]["valueFrom"]["secretKeyRef"]["key"]
    assert amqp_key == f"{name.upper().replace('-', '_')}_AMQP_URL"
    assert main["image"].rsplit(":", 1)[-1] not in ("latest", main["image"])
    resources = main["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_is_probed_bounded_configured_and_locked_down(
    overlay: str, name: str
) -> None:
    command, port = SERVICES[name]
    deployment = objects(overlay, "Deployment")[name]
    main = container(deployment)
    assert main["command"] == [command, "serve"]
    assert main["ports"] == [{"name": "http", "containerPort": port}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    graceful = float(config(overlay).get("GRACEFUL_TIMEOUT_SECONDS", GRACEFUL_TIMEOUT_DEFAULT))
    pre_stop = main["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # A stop: the preStop pause, then uvicorn's requests, then the consumers' messages.
    worst_stop = float(pre_stop[1]) + 2 * graceful
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > worst_stop
    assert config(overlay)["HTTP_HOST"] == "0.0.0.0"
    check_configured(deployment, overlay, name)
    check_secure(deployment)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics/"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_service_a_budget_and_migrates_before_it_starts(
    overlay: str, name: str
) -> None:
    command, _ = SERVICES[name]
    deployment = objects(overlay, "Deployment")[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    service = objects(overlay, "Service")[name]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    budget = objects(overlay, "PodDisruptionBudget")[name]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "maxUnavailable" in budget["spec"], "maxUnavailable works with any replica count"

    # An init container, not a Job: nothing to delete before the next deploy, and a rollout
    # cannot start pods before their migration has run.
    migrate = migration(deployment)
    assert migrate["command"] == [command, "migrate"]
    assert migrate["image"] == container(deployment)["image"]
    assert migrate["env"] == container(deployment)["env"]
    assert migrate["envFrom"] == container(deployment)["envFrom"]
    assert objects(overlay, "Job") == {}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_the_consumers_on_their_queue_length(overlay: str) -> None:
    deployments = objects(overlay, "Deployment")
    authentications = objects(overlay, "TriggerAuthentication")
    prefix = config(overlay).get("QUEUE_PREFIX", "")
    for name, scaled in objects(overlay, "ScaledObject").items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        assert "replicas" not in deployments[target]["spec"], "KEDA owns the replica count"
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        triggers = scaled["spec"]["triggers"]
        assert {t["metadata"]["queueName"] for t in triggers} == {
            prefix + queue for queue in SCALED_BY_KEDA[name]
        }
        for trigger in triggers:
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"]["mode"] == "QueueLength"
            # The management API, as a user that may only look (deploy/rabbitmq/definitions.json).
            assert trigger["metadata"]["protocol"] == "http"
            assert trigger["authenticationRef"]["name"] in authentications
    for authentication in authentications.values():
        (reference,) = authentication["spec"]["secretTargetRef"]
        assert (reference["parameter"], reference["name"]) == ("host", SECRET)
        assert reference["key"] == "KEDA_RABBITMQ_URL", "not a service's full-rights URL"


@pytest.mark.parametrize("service", SCALED_BY_KEDA)
def test_keda_watches_queues_the_service_consumes(service: str) -> None:
    module = importlib.import_module(f"{service.replace('-', '_')}.entrypoints.subscribers")
    consumed = {value for key, value in vars(module).items() if key.endswith("_QUEUE")}
    assert SCALED_BY_KEDA[service] <= consumed


def test_production_commits_no_secret() -> None:
    assert objects("production", "Secret") == {}


def test_development_generates_every_secret_key_the_workloads_need() -> None:
    (secret,) = objects("development", "Secret").values()
    assert secret["metadata"]["name"] == SECRET, "a fixed name: KEDA refers to it"
    needed = set()
    for workload in objects("development", "Deployment").values():
        for each in every_container(workload):
            for item in each.get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if reference and not reference.get("optional", False):
                    needed.add(reference["key"])
    for authentication in objects("development", "TriggerAuthentication").values():
        needed |= {ref["key"] for ref in authentication["spec"]["secretTargetRef"]}
    assert needed <= set(secret["data"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_pod_security_standard(overlay: str) -> None:
    (namespace,) = objects(overlay, "Namespace").values()
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for document in render(overlay):
        if document["kind"] != "Namespace" and "namespace" in document["metadata"]:
            assert document["metadata"]["namespace"] == namespace["metadata"]["name"]


@pytest.mark.parametrize("name", SERVICES)
def test_replicas_spread_over_zones_and_nodes_without_blocking_scheduling(name: str) -> None:
    pod = objects("production", "Deployment")[name]["spec"]["template"]
    spread = pod["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for constraint in spread:
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert (
            constraint["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        )


def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "the only operator this check understands"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def allowed(overlay: str, labels: dict[str, str], direction: str) -> list[dict[str, Any]]:
    """The rules of every policy that selects a pod with ``labels``, for ``direction``."""
    rules = []
    for policy in objects(overlay, "NetworkPolicy").values():
        if selects(policy, labels) and direction.capitalize() in policy["spec"]["policyTypes"]:
            rules += policy["spec"].get(direction, [])
    return rules


def ports(rules: list[dict[str, Any]]) -> set[Any]:
    return {port["port"] for rule in rules for port in rule.get("ports", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_network_policies_deny_by_default_and_allow_only_the_needed_flows(
    overlay: str, name: str
) -> None:
    default_deny = objects(overlay, "NetworkPolicy")["default-deny"]
    assert default_deny["spec"]["podSelector"] == {}
    assert set(default_deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in default_deny["spec"] and "egress" not in default_deny["spec"]

    labels = objects(overlay, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
    ingress = allowed(overlay, labels, "ingress")
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in ingress
        for peer in rule["from"]
    }
    public = name in {route.service for route in ROUTES}
    assert sources == ({"ingress-nginx", "monitoring"} if public else {"monitoring"})
    assert ports(ingress) == {"http"}

    egress = ports(allowed(overlay, labels, "egress"))
    assert {53, 5672, 5671, 5432} <= egress
    smtp = {25, 465, 587}
    assert (smtp <= egress) == (name == "mailer"), "only the mailer talks SMTP"


def images(documents: list[dict[str, Any]]) -> set[str]:
    return {
        each["image"]
        for document in documents
        if document["kind"] == "Deployment"
        for each in every_container(document)
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_image_an_overlay_names_is_the_one_that_renders(overlay: str, tmp_path: Path) -> None:
    assert images(list(render(overlay))) == {overlay_image(DEPLOY / "k8s" / "overlays" / overlay)}

    tree = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", tree)
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text())
    (image,) = document["images"]
    image.update(newName="registry.example.net/team/onboarding", newTag="2.3.4")
    kustomization.write_text(yaml.safe_dump(document))

    rendered = subprocess.run(
        [kubectl(), "kustomize", str(kustomization.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert images(documents) == {"registry.example.net/team/onboarding:2.3.4"}


def overlay_image(overlay: Path) -> str:
    (image,) = yaml.safe_load((overlay / "kustomization.yaml").read_text())["images"]
    return f"{image['newName']}:{image['newTag']}"
