"""The compose stack as a platform team starts it: build the image, bring every container up,
sign in as the admin through the gateway, invite one person and find the welcome email in
Mailpit with a join link that opens. Needs a container engine (Docker with the compose plugin);
where none answers, as on this project's CI machine, the test is skipped with that reason, and
pytest counts the skip in its summary (`make deploy-test` runs just this test)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.support import DEPLOY

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
GATEWAY = "http://localhost:8001"
MAILPIT = "http://localhost:8025"
ADMIN = {"login": "admin", "password": "dev-admin-password"}

# Building the image and starting every container takes far longer than the default timeout.
pytestmark = [pytest.mark.containers, pytest.mark.timeout(2400)]


def engine_problem() -> str | None:
    """Why no container engine can run the stack, or None when one answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` command"
    try:
        answer = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=20
        )
        if answer.returncode != 0:
            return f"`docker compose` is missing ({first_line(answer.stderr)})"
        answer = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "the container engine does not answer within 20 s"
    if answer.returncode != 0:
        return f"no container engine answers ({first_line(answer.stderr)})"
    return None


def first_line(text: str) -> str:
    return next(iter(text.strip().splitlines()), "no message")


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    problem = engine_problem()
    if problem is not None:
        pytest.skip(f"compose stack not started: {problem}")
    compose = [
        "docker",
        "compose",
        "-f",
        str(COMPOSE_FILE),
        "-p",
        f"onboarding-{uuid.uuid4().hex[:8]}",
    ]
    try:
        subprocess.run(
            [*compose, "up", "--detach", "--build", "--wait", "--wait-timeout", "600"],
            check=True,
            timeout=1800,
        )
        yield
    finally:
        subprocess.run([*compose, "logs", "--tail", "50"], check=False, timeout=120)
        subprocess.run(
            [*compose, "down", "--volumes", "--remove-orphans"], check=False, timeout=300
        )


def welcome_email(client: httpx.Client, address: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = client.get(f"{MAILPIT}/api/v1/messages").json()
        for summary in listing.get("messages", []):
            if address in {to["Address"] for to in summary["To"]}:
                message: dict[str, object] = client.get(
                    f"{MAILPIT}/api/v1/message/{summary['ID']}"
                ).json()
                return message
        time.sleep(1)
    raise AssertionError(f"no email to {address} in Mailpit within {timeout} s")


def test_one_invitation_goes_from_the_console_api_to_a_join_link_that_opens(stack: None) -> None:
    address = f"compose-{uuid.uuid4().hex[:6]}@example.com"
    with httpx.Client(timeout=30) as client:
        login = client.post(f"{GATEWAY}/api/v1/auth/login", json=ADMIN)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]

        invited = client.post(
            f"{GATEWAY}/api/v1/invitations",
            json={"emails": address},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert invited.status_code == 202, invited.text
        assert invited.json()["results"][0]["outcome"] == "queued"

        email = welcome_email(client, address)
        assert str(email["Subject"]).startswith("Welcome to Onboarding (compose)")
        link = re.search(rf"{re.escape(GATEWAY)}/join/[\w-]+", str(email["Text"]))
        assert link is not None, email["Text"]
        assert client.get(link.group()).status_code == 200
