"""The production broker and database of docs/production.md (deploy/k8s/dependencies/), read
without a cluster: every object well formed, the settings the guide relies on present, the
objects referring to each other by the right names, and the PgBouncer sized for the production
overlay's worst case."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, ROOT, load_json, objects

DEPENDENCIES = DEPLOY / "k8s" / "dependencies"
GUIDE = ROOT / "docs" / "production.md"
# Apart from the services: their namespace denies by default and enforces "restricted".
NAMESPACE = "onboarding-data"
BROKER_USERS = {
    "onboarding-users",
    "onboarding-invitations",
    "onboarding-mailer",
    "onboarding-auth-listener",
    "onboarding-idp",
}
KEDA_USER = "onboarding-keda"
# service -> PostgreSQL role and database (the *_DATABASE_URL of the README)
DATABASES = {"users", "invitations", "mailer", "auth_listener"}
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
API_VERSIONS = {
    "Certificate": "cert-manager.io/v1",
    "RabbitmqCluster": "rabbitmq.com/v1beta1",
    "User": "rabbitmq.com/v1beta1",
    "Permission": "rabbitmq.com/v1beta1",
    "TopicPermission": "rabbitmq.com/v1beta1",
    "Cluster": "postgresql.cnpg.io/v1",
    "Database": "postgresql.cnpg.io/v1",
    "Pooler": "postgresql.cnpg.io/v1",
    "ScheduledBackup": "postgresql.cnpg.io/v1",
    "ObjectStore": "barmancloud.cnpg.io/v1",
}


def files() -> list[Path]:
    return sorted(DEPENDENCIES.glob("*.yaml"))


def documents() -> list[dict[str, Any]]:
    return [doc for path in files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def one(kind: str) -> dict[str, Any]:
    (found,) = of_kind(kind).values()
    return found


def rabbitmq_config(text: str) -> dict[str, str]:
    """rabbitmq.conf's sysctl format: `key = value` lines, `#` comments."""
    config = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, separator, value = line.partition("=")
            assert separator, f"not key = value: {line}"
            config[key.strip()] = value.strip()
    return config


def test_every_manifest_is_well_formed() -> None:
    assert files(), "no manifest in deploy/k8s/dependencies"
    names: Counter[tuple[str, str]] = Counter()
    for doc in documents():
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"unexpected kind {kind}"
        assert doc.get("apiVersion") == API_VERSIONS[kind], f"{kind}: {doc.get('apiVersion')}"
        metadata = doc.get("metadata") or {}
        assert metadata.get("name"), f"{kind} without a name"
        assert metadata.get("namespace") == NAMESPACE, f"{kind} {metadata['name']}: namespace"
        assert isinstance(doc.get("spec"), dict), f"{kind} {metadata['name']}: no spec"
        names[kind, metadata["name"]] += 1
    assert not [key for key, count in names.items() if count > 1], "duplicate objects"


def test_rabbitmq_is_three_nodes_with_tls_and_production_settings() -> None:
    cluster = one("RabbitmqCluster")
    spec = cluster["spec"]
    assert spec["replicas"] == 3, "quorum queues need a majority that survives one loss"
    assert spec["resources"]["requests"] == spec["resources"]["limits"]
    assert spec["persistence"]["storage"]
    certificates = {c["spec"]["secretName"]: c for c in of_kind("Certificate").values()}
    assert spec["tls"]["secretName"] in certificates, "the TLS Secret comes from a Certificate"
    assert (
        f"{cluster['metadata']['name']}.{NAMESPACE}.svc"
        in (certificates[spec["tls"]["secretName"]]["spec"]["dnsNames"])
    )
    assert spec["tls"]["disableNonTLSListeners"] is True
    config = rabbitmq_config(spec["rabbitmq"]["additionalConfig"])
    assert config["cluster_partition_handling"] == "pause_minority"
    assert any(key.startswith("disk_free_limit.") for key in config)
    assert any(key.startswith("vm_memory_high_watermark.") for key in config)
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname", "one node per host"
    pod = spec["override"]["statefulSet"]["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert "topology.kubernetes.io/zone" in keys


def test_broker_users_match_the_definitions_and_keda_only_monitors() -> None:
    cluster = one("RabbitmqCluster")["metadata"]["name"]
    users = of_kind("User")
    assert set(users) == BROKER_USERS | {KEDA_USER}
    permissions = {p["spec"]["userReference"]["name"]: p for p in of_kind("Permission").values()}
    assert set(permissions) == set(users), "one Permission per User"
    definitions = load_json(DEPLOY / "rabbitmq" / "definitions.json")
    defined_users = {u["name"]: u for u in definitions["users"]}
    defined_permissions = {(p["user"], p["vhost"]): p for p in definitions["permissions"]}
    for name, user in users.items():
        spec = user["spec"]
        assert spec["rabbitmqClusterReference"]["name"] == cluster
        assert spec["importCredentialsSecret"]["name"], f"{name}: credentials from a Secret"
        expected_tags = ["monitoring"] if name == KEDA_USER else []
        assert spec.get("tags", []) == expected_tags, name
        # The same users and rights as the compose broker's definitions.
        assert sorted(defined_users[name]["tags"]) == sorted(spec.get("tags", [])), name
        permission = permissions[name]["spec"]
        assert permission["rabbitmqClusterReference"]["name"] == cluster
        defined = defined_permissions[name, permission["vhost"]]
        for right in ("configure", "write", "read"):
            assert permission["permissions"][right] == defined[right], f"{name} {right}"
    # KEDA may enter the vhost and read queue lengths, and nothing else.
    assert set(permissions[KEDA_USER]["spec"]["permissions"].values()) == {"^$"}
    # Which routing keys each may write (and read) on each exchange, as in the definitions.
    topics = {
        (t["spec"]["userReference"]["name"], t["spec"]["permissions"]["exchange"]): t["spec"]
        for t in of_kind("TopicPermission").values()
    }
    assert {
        key: (spec["permissions"]["write"], spec["permissions"]["read"])
        for key, spec in topics.items()
    } == {
        (t["user"], t["exchange"]): (t["write"], t["read"])
        for t in definitions["topic_permissions"]
    }
    assert all(spec["rabbitmqClusterReference"]["name"] == cluster for spec in topics.values())


def test_postgres_is_three_instances_with_tls_backups_and_a_role_per_service() -> None:
    cluster = one("Cluster")
    name, spec = cluster["metadata"]["name"], cluster["spec"]
    assert spec["instances"] == 3
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    pooler = one("Pooler")["metadata"]["name"]
    assert f"{pooler}.{NAMESPACE}.svc" in spec["certificates"]["serverAltDNSNames"], (
        "verify-full through the pooler needs its name in the server certificate"
    )
    (archiver,) = [p for p in spec["plugins"] if p.get("isWALArchiver")]
    assert archiver["name"] == BARMAN_PLUGIN
    store = one("ObjectStore")
    assert archiver["parameters"]["barmanObjectName"] == store["metadata"]["name"]
    assert re.fullmatch(r"\d+[dwm]", store["spec"]["retentionPolicy"])
    assert store["spec"]["configuration"]["destinationPath"].startswith(
        ("s3://", "gs://", "https://")
    )
    backup = one("ScheduledBackup")["spec"]
    assert backup["cluster"]["name"] == name
    assert backup["method"] == "plugin" and backup["pluginConfiguration"]["name"] == BARMAN_PLUGIN
    assert len(backup["schedule"].split()) == 6, "CloudNativePG schedules have a seconds field"
    roles = {role["name"]: role for role in spec["managed"]["roles"]}
    assert set(roles) == DATABASES
    for role in roles.values():
        assert role["login"] is True and role["passwordSecret"]["name"]
    databases = {db["spec"]["name"]: db["spec"] for db in of_kind("Database").values()}
    assert set(databases) == DATABASES
    for database, db_spec in databases.items():
        assert db_spec["cluster"]["name"] == name
        assert db_spec["owner"] == database, "each service owns its database"


def worst_case_client_connections(overlay: str) -> int:
    """Σ over the services (max replicas + maxSurge) x 2 x DB_POOL_SIZE, from the overlay."""
    (config,) = [
        cm for name, cm in objects(overlay, "ConfigMap").items() if name.startswith("onboarding-")
    ]
    pool = int(config["data"]["DB_POOL_SIZE"])
    scaled = {
        s["spec"]["scaleTargetRef"]["name"]: s for s in objects(overlay, "ScaledObject").values()
    }
    total = 0
    for name, deployment in objects(overlay, "Deployment").items():
        spec = deployment["spec"]
        replicas = scaled[name]["spec"]["maxReplicaCount"] if name in scaled else spec["replicas"]
        surge = spec["strategy"]["rollingUpdate"]["maxSurge"]
        assert isinstance(surge, int), f"{name}: maxSurge as a number"
        # One engine per pod: pool_size plus max_overflow=pool_size (onboarding_shared.db).
        total += (replicas + surge) * 2 * pool
    return total


def test_pgbouncer_takes_the_production_worst_case_in_transaction_mode() -> None:
    pooler = one("Pooler")
    spec = pooler["spec"]
    assert spec["cluster"]["name"] == one("Cluster")["metadata"]["name"]
    assert spec["type"] == "rw"
    assert spec["pgbouncer"]["poolMode"] == "transaction"
    parameters = spec["pgbouncer"]["parameters"]
    # asyncpg's prepared statements through transaction mode (docs/production.md).
    assert int(parameters["max_prepared_statements"]) > 0
    worst = worst_case_client_connections("production")
    assert int(parameters["max_client_conn"]) >= worst, "one pooler pod must take every client"
    servers = spec["instances"] * len(DATABASES) * int(parameters["default_pool_size"])
    max_connections = int(one("Cluster")["spec"]["postgresql"]["parameters"]["max_connections"])
    assert servers + 10 <= max_connections, "room left for replication and the operator"


def test_the_guide_covers_every_manifest_and_states_the_budget() -> None:
    guide = GUIDE.read_text()
    for path in files():
        assert path.name in guide, f"docs/production.md does not mention {path.name}"
    worst = worst_case_client_connections("production")
    # The last cell of the budget table's worst row.
    assert re.search(rf"\|\s*{worst}\s*\|\s*$", guide, re.M), (
        f"the guide's worst case is not {worst}"
    )


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_every_file_parses_as_yaml(path: Path) -> None:
    assert [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
