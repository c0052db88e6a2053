"""The mailer's record of attempts against the real PostgreSQL: an attempt stays counted when
the transaction that sends fails afterwards (a database cut, a crash), and a resend carries the
same Message-ID as the first send."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailer.adapters.locks import KeyedLocks
from mailer.adapters.orm import emails, map_domain, messaging
from mailer.adapters.unit_of_work import SqlAlchemyMailerUnitOfWork
from mailer.bootstrap import MIGRATIONS
from mailer.service_layer import services
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.messaging.consumer import Delivery
from tests.support.databases import DatabaseFactory
from tests.support.factories import invitation_requested
from tests.support.fake_mailer import ScriptedSender

pytestmark = pytest.mark.integration

FIRST = Delivery(attempt=1, max_attempts=3, routing_key="invitation.requested.v2")
RETRY_FOR = timedelta(hours=1)


class CutAfterSending(SqlAlchemyMailerUnitOfWork):
    """The database goes away once the mail is out: the commit that records it fails."""

    sending_began = False

    async def commit(self) -> None:
        if self.sending_began:
            raise ConnectionError("the database is unreachable")
        await super().commit()


class CuttingSender(ScriptedSender):
    """Sends, then the database goes away under the transaction that would record it."""

    def __init__(self, uow: CutAfterSending) -> None:
        super().__init__()
        self._uow = uow

    async def send(self, message: EmailMessage) -> None:
        await super().send(message)
        self._uow.sending_began = True


async def test_an_attempt_stays_counted_when_the_sending_transaction_fails(
    databases: DatabaseFactory,
) -> None:
    map_domain()
    engine = create_engine(await databases.create_migrated("mailer", MIGRATIONS))
    sessions = session_factory(engine)
    outgoing = services.invitation_email(invitation_requested(), sender="team@acme.test")
    try:
        locks = KeyedLocks()
        cut = CutAfterSending(sessions, messaging, producer="mailer", email_locks=locks)
        first = CuttingSender(cut)
        with pytest.raises(ConnectionError):
            await services.deliver(cut, first, outgoing, FIRST, retry_for=RETRY_FOR)

        async with sessions() as session:
            attempts = (
                await session.execute(
                    select(emails.c.attempts).where(
                        emails.c.source_event_id == outgoing.source_event_id
                    )
                )
            ).scalar_one()
        assert attempts == 1

        # Redelivered after the cut: sent again (at least once), and recognisably the same mail.
        again = ScriptedSender()
        uow = SqlAlchemyMailerUnitOfWork(sessions, messaging, producer="mailer", email_locks=locks)
        settled = await services.deliver(uow, again, outgoing, FIRST, retry_for=RETRY_FOR)
        assert settled is not None and settled.sent
        assert again.sent[0]["Message-ID"] == first.sent[0]["Message-ID"]
        assert str(outgoing.source_event_id) in again.sent[0]["Message-ID"]
    finally:
        await engine.dispose()
