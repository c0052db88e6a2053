"""Broker users and virtual hosts of one test, made with `rabbitmqctl` on the shared broker and
removed afterwards. Each test gets its own vhost and its own user names, so nothing it grants
reaches another test or anything else on the machine."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pytest

# The Erlang node answers slowly while it is busy; the commands themselves take milliseconds.
TIMEOUT_SECONDS = 60


def rabbitmqctl(*arguments: str) -> None:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        pytest.fail(
            "rabbitmqctl is needed to create broker users for the trust tests (it comes with "
            "the RabbitMQ server that .ci/run starts)",
            pytrace=False,
        )
    result = subprocess.run(
        [tool, "--quiet", *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(arguments[:2])} failed: {result.stderr}")


@dataclass
class ScratchVhost:
    """A vhost with its own users; `url(user)` connects as one of them."""

    amqp_url: str
    name: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:10]}")
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    users: dict[str, str] = field(default_factory=dict)

    def create(self) -> ScratchVhost:
        rabbitmqctl("add_vhost", self.name)
        return self

    def user_name(self, base: str) -> str:
        """Users are broker-wide: a suffix keeps this test's apart from any other's."""
        return f"{base}-{self.suffix}"

    def add_user(
        self,
        base: str,
        *,
        configure: str,
        write: str,
        read: str,
        topics: dict[str, tuple[str, str]] | None = None,
        tags: str = "",
    ) -> str:
        name = self.user_name(base)
        password = uuid.uuid4().hex
        rabbitmqctl("add_user", name, password)
        self.users[name] = password
        if tags:
            rabbitmqctl("set_user_tags", name, tags)
        rabbitmqctl("set_permissions", "-p", self.name, name, configure, write, read)
        for exchange, (topic_write, topic_read) in (topics or {}).items():
            rabbitmqctl(
                "set_topic_permissions", "-p", self.name, name, exchange, topic_write, topic_read
            )
        return name

    def url(self, user: str) -> str:
        parts = urlsplit(self.amqp_url)
        netloc = f"{quote(user, safe='')}:{self.users[user]}@{parts.hostname}:{parts.port or 5672}"
        return parts._replace(netloc=netloc, path="/" + quote(self.name, safe="")).geturl()

    @property
    def admin_url(self) -> str:
        """The shared broker's own (administrator) user, in this vhost."""
        return urlsplit(self.amqp_url)._replace(path="/" + quote(self.name, safe="")).geturl()

    def delete(self) -> None:
        for name in self.users:
            rabbitmqctl("delete_user", name)
        rabbitmqctl("delete_vhost", self.name)
