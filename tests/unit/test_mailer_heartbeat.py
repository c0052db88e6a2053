"""The mailer's heartbeat follows the SMTP server's reachability at once: a beat goes out as soon
as a send fails after succeeding (or the reverse), not a whole interval later."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from mailer.context import MailerContext
from mailer.entrypoints.heartbeat import heartbeat
from mailer.service_layer.ports import AttemptOutcome
from mailer.service_layer.unit_of_work import MailerUnitOfWork
from mailer.settings import MailerSettings
from onboarding_shared.messaging.publisher import OutgoingMessage
from tests.support.auth import verifier_settings

INTERVAL = 30.0  # far longer than the test waits: only a change can bring the next beat


class SwitchableSender:
    def __init__(self) -> None:
        self._last: AttemptOutcome | None = None
        self._changed = asyncio.Event()

    @property
    def last_attempt(self) -> AttemptOutcome | None:
        return self._last

    @property
    def reachability_changed(self) -> asyncio.Event:
        return self._changed

    async def send(self, message: EmailMessage) -> None:
        raise AssertionError("the heartbeat never sends mail")

    def attempt(self, reached: bool) -> None:
        changed = self._last is None or self._last.reached_server != reached
        self._last = AttemptOutcome(reached_server=reached, at=datetime.now(UTC))
        if changed:
            self._changed.set()


class RecordingPublisher:
    def __init__(self) -> None:
        self.beats: list[bool | None] = []
        self.new_beat = asyncio.Event()

    async def publish(self, message: OutgoingMessage) -> None:
        self.beats.append(json.loads(message.body)["data"]["last_attempt_ok"])
        self.new_beat.set()


def no_unit_of_work() -> MailerUnitOfWork:
    raise AssertionError("the heartbeat opens no unit of work")


async def next_beat(publisher: RecordingPublisher) -> bool | None:
    publisher.new_beat.clear()
    async with asyncio.timeout(2):  # the bound
        await publisher.new_beat.wait()
    return publisher.beats[-1]


async def test_a_change_of_reachability_is_published_within_two_seconds() -> None:
    settings = MailerSettings(
        **verifier_settings(), smtp_host="127.0.0.1", status_interval_seconds=INTERVAL
    )
    sender = SwitchableSender()
    publisher = RecordingPublisher()
    context = MailerContext(settings=settings, uow=no_unit_of_work, sender=sender)
    beating = asyncio.create_task(heartbeat(context, publisher)())
    try:
        await asyncio.wait_for(publisher.new_beat.wait(), timeout=2)
        assert publisher.beats == [None]

        sender.attempt(reached=False)
        assert await next_beat(publisher) is False
        sender.attempt(reached=True)
        assert await next_beat(publisher) is True

        sender.attempt(reached=True)  # no change: no extra beat
        publisher.new_beat.clear()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await publisher.new_beat.wait()
    finally:
        beating.cancel()
