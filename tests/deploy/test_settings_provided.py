"""Every deploy target gives every service every setting it needs: the environment each
container would get (compose, and both kustomize overlays with their ConfigMap and Secret) is
handed to the service's own `check` command, which validates the settings and wires the service
without connecting to anything. A missing or invalid setting fails here, not at start-up."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tests.deploy.support import DEPLOY, OVERLAYS, ROOT, SERVICES, load_yaml, objects

TARGETS = ("compose", *OVERLAYS)
BIN = Path(sys.executable).parent
SECRET = "onboarding-secrets"


@dataclass(frozen=True)
class Container:
    target: str
    service: str
    name: str
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]


def compose_containers() -> list[Container]:
    services = load_yaml(DEPLOY / "docker-compose.yml")["services"]
    found = []
    for service in SERVICES:
        for name in (service, f"{service}-migrate"):
            spec = services[name]
            env = {key: str(value) for key, value in spec["environment"].items()}
            found.append(
                Container("compose", service, name, tuple(spec["command"]), tuple(env.items()))
            )
    return found


def readme_secret_keys() -> set[str]:
    """The keys of the `kubectl create secret generic onboarding-secrets` command in README."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"create secret generic {SECRET}")
    command = readme[start : readme.index("```", start)]
    return set(re.findall(r"--from-(?:literal|file)=([A-Z_]+)=", command))


@cache
def production_secret() -> dict[str, str]:
    """What an operator following the README puts in the production Secret."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    values = {
        "AUTH_PRIVATE_KEY": private,
        "AUTH_PUBLIC_KEY": public.decode(),
        "INVITATION_TOKEN_SECRET": base64.b64encode(os.urandom(48)).decode(),
        "ADMIN_PASSWORD": "a long production password",
        "SMTP_USERNAME": "onboarding",
        "SMTP_PASSWORD": "smtp password",
        "KEDA_RABBITMQ_URL": "https://onboarding-keda:pw@rabbitmq.example.net:15671",
    }
    for service in SERVICES:
        prefix = service.upper().replace("-", "_")
        database = service.replace("-", "_")
        values[f"{prefix}_AMQP_URL"] = f"amqps://onboarding-{service}:pw@rabbitmq.example.net:5671/"
        values[f"{prefix}_DATABASE_URL"] = (
            f"postgresql+asyncpg://{database}:pw@db.example.net:5432/{database}"
        )
    return values


def secret_data(overlay: str) -> dict[str, str]:
    if overlay == "production":
        return production_secret()
    (secret,) = objects(overlay, "Secret").values()
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def container_environment(spec: dict[str, Any], overlay: str) -> dict[str, str]:
    config_maps = objects(overlay, "ConfigMap")
    secrets = secret_data(overlay)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        reference = item["valueFrom"]["secretKeyRef"]
        assert reference["name"] == SECRET
        if reference["key"] in secrets:
            env[item["name"]] = secrets[reference["key"]]
        else:
            assert reference.get("optional", False), f"{reference['key']} is not in the Secret"
    return env


def kubernetes_containers(overlay: str) -> list[Container]:
    found = []
    for service, deployment in objects(overlay, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        for spec in pod.get("initContainers", []) + pod["containers"]:
            env = container_environment(spec, overlay)
            found.append(
                Container(
                    overlay, service, spec["name"], tuple(spec["command"]), tuple(env.items())
                )
            )
    return found


def containers(target: str) -> list[Container]:
    return compose_containers() if target == "compose" else kubernetes_containers(target)


def check(container: Container) -> subprocess.CompletedProcess[str]:
    program = container.command[0]
    # Only what the target provides, so a setting missing there cannot come from this machine.
    env = {"PATH": os.environ["PATH"], **dict(container.environment)}
    return subprocess.run(
        [str(BIN / program), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def checked() -> dict[tuple[str, str], list[tuple[Container, subprocess.CompletedProcess[str]]]]:
    """Every container of every target, checked in parallel (each check imports a service)."""
    every = [container for target in TARGETS for container in containers(target)]
    distinct = {(c.command[0], c.environment): c for c in every}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(distinct, pool.map(check, distinct.values()), strict=True))
    by_service: dict[tuple[str, str], list[tuple[Container, subprocess.CompletedProcess[str]]]] = {}
    for container in every:
        result = results[(container.command[0], container.environment)]
        by_service.setdefault((container.target, container.service), []).append((container, result))
    return by_service


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("target", TARGETS)
def test_every_setting_is_provided(
    checked: dict[tuple[str, str], list[tuple[Container, subprocess.CompletedProcess[str]]]],
    target: str,
    service: str,
) -> None:
    results = checked[(target, service)]
    assert {container.command[0] for container, _ in results} == {SERVICES[service][0]}
    assert len(results) == 2, "the service and its migration"
    for container, result in results:
        assert result.returncode == 0, f"{container.name}: {result.stderr}"
        assert "settings valid" in result.stdout


def test_the_check_fails_when_a_setting_is_missing() -> None:
    (invitations,) = [
        c for c in compose_containers() if c.name == "invitations" and c.service == "invitations"
    ]
    without_secret = tuple(
        (key, value) for key, value in invitations.environment if key != "INVITATION_TOKEN_SECRET"
    )
    result = check(
        Container("compose", "invitations", "invitations", invitations.command, without_secret)
    )
    assert result.returncode == 2
    assert "invalid setting INVITATION_TOKEN_SECRET: Field required" in result.stderr


def test_the_readme_creates_every_secret_key_production_needs() -> None:
    needed = set()
    for deployment in objects("production", "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        for spec in pod.get("initContainers", []) + pod["containers"]:
            for item in spec.get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    needed.add(reference["key"])
    for authentication in objects("production", "TriggerAuthentication").values():
        needed |= {ref["key"] for ref in authentication["spec"]["secretTargetRef"]}
    assert readme_secret_keys() == needed
    assert set(production_secret()) == needed, "this test's stand-in for the README's Secret"


def test_every_development_target_signs_in_with_the_same_admin_password() -> None:
    compose = dict(next(c for c in compose_containers() if c.name == "users").environment)
    assert secret_data("development")["ADMIN_PASSWORD"] == compose["ADMIN_PASSWORD"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_believes_exactly_the_broker_user_each_service_connects_as(
    target: str,
) -> None:
    # What each service connects as; the main container of each, as it serves.
    serving = {
        c.service: dict(c.environment) for c in containers(target) if c.command[-1] == "serve"
    }
    connects_as = {service: urlsplit(env["AMQP_URL"]).username for service, env in serving.items()}
    for service, env in serving.items():
        assert json.loads(env["PRODUCER_USERS"]) == connects_as, service
    assert len(set(connects_as.values())) == len(SERVICES), "one broker user per service"
