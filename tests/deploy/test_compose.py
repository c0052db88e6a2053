"""deploy/docker-compose.yml: valid against the Compose Specification's JSON schema, and wired
as the README promises (start order, health checks, one database per service, scraping)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.support import (
    DEPLOY,
    GRACEFUL_TIMEOUT_DEFAULT,
    ROOT,
    SERVICES,
    load_json,
    load_yaml,
    schema_errors,
    validator,
)

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
# Host ports that differ from the container's: host port 8001 is the gateway's, the public origin
# (test_public_routes.py checks it).
PUBLISHED = {"users": 8011}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment"
    return {key: str(value) for key, value in env.items()}


def test_the_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    assert schema_errors(validator("compose-spec.json"), compose) == []


def test_the_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "users": {
                **compose["services"]["users"],
                "depends_on": {"postgres": {"condition": "up"}},
            },
            "mailer": {**compose["services"]["mailer"], "helthcheck": {}},
        },
    }
    errors = schema_errors(validator("compose-spec.json"), broken)
    assert any(e.startswith("services/users/depends_on") for e in errors), errors
    assert any(e.startswith("services/mailer") and "helthcheck" in e for e in errors), errors


def test_the_broker_is_rabbitmq_4_with_management_and_prometheus(compose: dict[str, Any]) -> None:
    rabbitmq = compose["services"]["rabbitmq"]
    assert re.fullmatch(r"rabbitmq:4\.\d+\.\d+-management", rabbitmq["image"])
    assert {"5672:5672", "15672:15672", "15692:15692"} <= set(rabbitmq["ports"])
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins
    assert "rabbitmq_prometheus" in plugins
    assert "healthcheck" in rabbitmq


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_starts_after_its_database_broker_and_migration(
    compose: dict[str, Any], name: str
) -> None:
    command, port = SERVICES[name]
    service = compose["services"][name]
    migrate = compose["services"][f"{name}-migrate"]

    assert service["command"] == [command, "serve"]
    assert migrate["command"] == [command, "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["environment"] == service["environment"]
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    depends = service["depends_on"]
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert depends["rabbitmq"] == {"condition": "service_healthy"}
    assert depends[f"{name}-migrate"] == {"condition": "service_completed_successfully"}
    assert f"http://127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
    assert f"{PUBLISHED.get(name, port)}:{port}" in service["ports"]
    env = environment(service)
    assert env["HTTP_PORT"] == str(port)
    assert env["HTTP_HOST"] == "0.0.0.0"
    assert urlsplit(env["AMQP_URL"]).username == f"onboarding-{name}", "its own broker user"
    assert "AUTH_PUBLIC_KEY" in env
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]


def test_the_users_service_gets_the_signing_key_and_first_admin(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["users"])
    assert "BEGIN PRIVATE KEY" in env["AUTH_PRIVATE_KEY"]
    assert {"ADMIN_USERNAME", "ADMIN_EMAIL", "ADMIN_PASSWORD"} <= set(env)
    for name in ("invitations", "mailer", "auth-listener"):
        assert "AUTH_PRIVATE_KEY" not in environment(compose["services"][name])


def test_each_service_has_its_own_database_created_by_the_init_script(
    compose: dict[str, Any],
) -> None:
    script = (DEPLOY / "postgres" / "init-databases.sh").read_text()
    created = set(re.search(r"for name in ([\w ]+); do", script).group(1).split())  # type: ignore[union-attr]
    urls = {}
    for name in SERVICES:
        key = f"{name.replace('-', '_').upper()}_DATABASE_URL"
        urls[name] = environment(compose["services"][name])[key]
    databases = {url.rsplit("/", 1)[1] for url in urls.values()}
    assert databases == created
    for url in urls.values():
        database = url.rsplit("/", 1)[1]
        assert url == f"postgresql+asyncpg://{database}:{database}-dev@postgres:5432/{database}"


def test_the_mailer_sends_to_mailpit(compose: dict[str, Any]) -> None:
    mailpit = compose["services"]["mailpit"]
    assert "8025:8025" in mailpit["ports"]
    env = environment(compose["services"]["mailer"])
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_TLS"]) == ("mailpit", "1025", "none")
    assert compose["services"]["mailer"]["depends_on"]["mailpit"] == {
        "condition": "service_healthy"
    }


def test_prometheus_scrapes_every_service_and_rabbitmq_per_queue(compose: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for c in jobs["onboarding"]["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:{port}" for name, (_, port) in SERVICES.items()}
    assert jobs["onboarding"]["metrics_path"] == "/metrics/"
    assert jobs["rabbitmq"]["metrics_path"] == "/metrics/per-object"
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboard(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "onboarding.yml")
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts a missing {source}"


def password_matches(user: dict[str, Any], password: str) -> bool:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    stored = base64.b64decode(user["password_hash"])
    salt, digest = stored[:4], stored[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_connects_as_its_own_broker_user_defined_for_rabbitmq(
    compose: dict[str, Any], name: str
) -> None:
    definitions = load_json(DEPLOY / "rabbitmq" / "definitions.json")
    url = urlsplit(environment(compose["services"][name])["AMQP_URL"])
    users = {user["name"]: user for user in definitions["users"]}
    assert url.username in users
    assert url.password is not None and password_matches(users[url.username], url.password)
    assert users[url.username]["tags"] == [], "no management rights"
    assert {"user": url.username, "vhost": "/"}.items() <= next(
        p for p in definitions["permissions"] if p["user"] == url.username
    ).items()


def test_the_keda_user_may_only_look() -> None:
    definitions = load_json(DEPLOY / "rabbitmq" / "definitions.json")
    (keda,) = [user for user in definitions["users"] if user["name"] == "onboarding-keda"]
    assert keda["tags"] == ["monitoring"]
    (permission,) = [p for p in definitions["permissions"] if p["user"] == "onboarding-keda"]
    assert (permission["configure"], permission["write"], permission["read"]) == ("^$",) * 3


@pytest.mark.parametrize("name", SERVICES)
def test_a_stop_waits_for_requests_and_then_messages_to_finish(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    graceful = float(environment(service).get("GRACEFUL_TIMEOUT_SECONDS", GRACEFUL_TIMEOUT_DEFAULT))
    grace = service["stop_grace_period"]
    assert grace.endswith("s")
    # uvicorn's requests, then the consumers' messages, each up to GRACEFUL_TIMEOUT_SECONDS.
    assert float(grace[:-1]) > 2 * graceful


def test_the_services_believe_forwarded_addresses_from_the_gateway_only(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["gateway"]
    address = gateway["networks"]["default"]["ipv4_address"]
    (subnet,) = compose["networks"]["default"]["ipam"]["config"]
    assert address.rsplit(".", 1)[0] == subnet["subnet"].rsplit(".", 1)[0]
    for name in SERVICES:
        assert environment(compose["services"][name])["TRUSTED_PROXIES"] == address


def test_the_admin_password_is_the_one_the_readme_signs_in_with(compose: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    signed_in_with = set(re.findall(r"sign in as `admin` / `([^`]+)`", readme))
    assert signed_in_with == {environment(compose["services"]["users"])["ADMIN_PASSWORD"]}
