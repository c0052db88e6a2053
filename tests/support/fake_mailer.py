"""A stand-in for the mailer's SMTP adapter: each send succeeds, or raises what it was told to."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

from mailer.service_layer.ports import AttemptOutcome


class ScriptedSender:
    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[EmailMessage] = []

    @property
    def last_attempt(self) -> AttemptOutcome | None:
        return None

    @property
    def reachability_changed(self) -> asyncio.Event:
        return asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append(message)
