"""deploy/k8s: both overlays render with kustomize (kubectl from PyPI); every object is valid
against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields are errors) or,
for KEDA's, against structural schemas; and the objects fit together as the README promises.
The Ingress routes: test_public_routes.py."""

from __future__ import annotations

import copy
import importlib
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.support import (
    GRACEFUL_TIMEOUT_DEFAULT,
    OVERLAYS,
    SERVICES,
    objects,
    render,
    schema_errors,
    validator,
)

# The oldest Kubernetes release supported, and the newest whose schemas are bundled.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
KEDA_SCHEMAS = {
    "ScaledObject": "keda-scaledobject.json",
    "TriggerAuthentication": "keda-triggerauthentication.json",
}
SECRET = "onboarding-secrets"
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
        if kind in KEDA_SCHEMAS:
            errors = schema_errors(validator(KEDA_SCHEMAS[kind]), document)
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
        "Job": {f"{name}-migrate" for name in SERVICES},
        "Ingress": {"onboarding"},
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
    security = container(workload)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container(workload).get("volumeMounts", [])}
    assert "/tmp" in mounts, "a writable /tmp beside the read-only root"


def check_configured(workload: dict[str, Any], overlay: str, port: int) -> None:
    main = container(workload)
    config_map = next(iter(objects(overlay, "ConfigMap")))
    assert main["envFrom"] == [{"configMapRef": {"name": config_map}}]
    env = {item["name"]: item for item in main["env"]}
    assert env["HTTP_PORT"]["value"] == str(port)
    for item in env.values():
        if "valueFrom" in item:
            assert item["valueFrom"]["secretKeyRef"]["name"] == SECRET
    assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"]["key"] == "AMQP_URL"
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
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > graceful + 5
    assert config(overlay)["HTTP_HOST"] == "0.0.0.0"
    check_configured(deployment, overlay, port)
    check_secure(deployment)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics/"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_service_a_budget_and_a_migration_job(overlay: str, name: str) -> None:
    command, _ = SERVICES[name]
    deployment = objects(overlay, "Deployment")[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    service = objects(overlay, "Service")[name]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    budget = objects(overlay, "PodDisruptionBudget")[name]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "maxUnavailable" in budget["spec"], "maxUnavailable works with any replica count"

    job = objects(overlay, "Job")[f"{name}-migrate"]
    assert container(job)["command"] == [command, "migrate"]
    assert container(job)["image"] == container(deployment)["image"]
    assert container(job)["env"] == container(deployment)["env"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    check_secure(job)


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
            assert trigger["authenticationRef"]["name"] in authentications
    for authentication in authentications.values():
        (reference,) = authentication["spec"]["secretTargetRef"]
        assert (reference["parameter"], reference["name"]) == ("host", SECRET)


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
    for kind in ("Deployment", "Job"):
        for workload in objects("development", kind).values():
            for item in container(workload).get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if reference and not reference.get("optional", False):
                    needed.add(reference["key"])
    for authentication in objects("development", "TriggerAuthentication").values():
        needed |= {ref["key"] for ref in authentication["spec"]["secretTargetRef"]}
    assert needed <= set(secret["data"])
