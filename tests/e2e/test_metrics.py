"""Every metric the dashboard and the alert rules query (deploy/grafana/expected-metrics.txt)
is exported by the running services that are said to export it, with the expected type and
labels. RabbitMQ's own metrics (rabbitmq_*) are out of scope here: they come from the
broker's Prometheus plugin, which this test does not run; tests/deploy checks their queries."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.deploy.test_dashboard import Expected, expected_metrics
from tests.e2e.conftest import SERVICES, RunningSystem
from tests.support.auth import ADMIN, admin_headers
from tests.support.broker import eventually

pytestmark = pytest.mark.e2e

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? ")
LABEL_NAME = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')


def ours(service: str) -> list[Expected]:
    return [metric for metric in expected_metrics().values() if service in metric.exporters]


def sample_label_names(exposition: str, name: str) -> list[frozenset[str]]:
    """The label names of each sample of ``name`` (histogram buckets without their le)."""
    found = []
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match is None or match.group("name") not in {name, f"{name}_bucket"}:
            continue
        labels = set(LABEL_NAME.findall(match.group("labels") or "")) - {"le"}
        found.append(frozenset(labels))
    return found


async def drive_traffic(system: RunningSystem) -> None:
    """An invitation emailed, and an admin login (users and auth-listener see events)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{system.url('invitations')}/api/v1/invitations",
            json={"emails": ["ada@example.com", "not an address"]},
            headers=admin_headers(),
        )
        assert response.status_code == 202, response.text
        login = await client.post(
            f"{system.url('users')}/api/v1/auth/login",
            json={"login": ADMIN["username"], "password": ADMIN["password"]},
        )
        assert login.status_code == 200, login.text
    await eventually(lambda: len(system.smtp.messages) == 1, timeout=60)


async def test_each_service_exports_its_lines_of_the_dashboard_contract(
    system: RunningSystem,
) -> None:
    await drive_traffic(system)
    missing: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for service in SERVICES:
            # Both spellings answer, without a redirect (scrapers are configured with either).
            assert (await client.get(f"{system.url(service)}/metrics/")).status_code == 200
            response = await client.get(f"{system.url(service)}/metrics")
            assert response.status_code == 200, f"{service}: {response.status_code}"
            exposition = response.text
            for metric in ours(service):
                problem = check(exposition, metric)
                if problem:
                    missing.setdefault(service, []).append(problem)
    assert not missing, missing


def check(exposition: str, metric: Expected) -> str | None:
    """What is wrong with ``metric`` in ``exposition``, or None. A labelled metric with no
    sample yet still shows its HELP and TYPE lines: that counts as exported."""
    if f"# TYPE {metric.name} {metric.type}\n" not in exposition:
        return f"{metric.name}: no '# TYPE {metric.name} {metric.type}' line"
    labels = sample_label_names(exposition, metric.name)
    if not metric.labels and not labels:
        return f"{metric.name}: no sample"
    wrong = [sorted(names) for names in labels if names != metric.labels]
    if wrong:
        return f"{metric.name}: samples labelled {wrong}, expected {sorted(metric.labels)}"
    return None
