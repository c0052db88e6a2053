"""The audit trail with fakes: one entry per event, what each event means, who did it, and
nothing secret kept."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from onboarding_shared.contract import (
    Envelope,
    InvitationIssued,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    UserCreated,
    UserUpdated,
    new_event,
)
from onboarding_shared.contract.envelope import EventData
from tests.support.fake_users import FakeUsersUnitOfWork
from users.domain.audit import AuditAction, AuditEntry, TargetKind
from users.domain.model import NewUser, User
from users.domain.passwords import PasswordPolicy
from users.service_layer import audit
from users.service_layer.unit_of_work import AuditPage, AuditQuery, AuditRepository

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
INVITATION = uuid.uuid4()
LINK = uuid.uuid4()
ADA = uuid.uuid4()


class FakeAudit(AuditRepository):
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def add(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def has_entries(self, kind: TargetKind, target_id: uuid.UUID) -> bool:
        return any(e.target_kind is kind and e.target_id == target_id for e in self.entries)

    async def label_of(self, kind: TargetKind, target_id: uuid.UUID) -> str | None:
        labels = [
            e.target_label
            for e in self.entries
            if e.target_kind is kind and e.target_id == target_id and e.target_label
        ]
        return labels[-1] if labels else None

    async def page(self, query: AuditQuery) -> AuditPage:
        chosen = [e for e in self.entries if query.action in (None, e.action)]
        return AuditPage(chosen[query.offset : query.offset + query.limit], len(chosen))


class AuditingUnitOfWork(FakeUsersUnitOfWork):
    audit: FakeAudit

    def __init__(self) -> None:
        super().__init__()
        self.audit = FakeAudit()


def event(data: EventData, *, actor: uuid.UUID | None = None, minutes: int = 0) -> Envelope[Any]:
    made = new_event(data, producer=data.spec.producer or "users")
    return made.model_copy(
        update={"occurred_at": NOW + timedelta(minutes=minutes), "actor_id": actor}
    )


def snapshot(**changes: Any) -> dict[str, Any]:
    return {
        "user_id": ADA,
        "email": "ada@example.com",
        "username": "ada",
        "name": "Ada",
        "roles": ["user"],
        "status": "pending",
        "created_at": NOW,
        **changes,
    }


async def an_admin(uow: AuditingUnitOfWork) -> uuid.UUID:
    admin = User.register(
        NewUser(
            email="boss@example.com",
            name="The Boss",
            username="boss",
            password="Analytical-engine-1",
            roles=("admin",),
        ).checked(PasswordPolicy()),
        password_hash="x",
        now=NOW,
    )
    uow.users.add(admin)
    return admin.id


async def test_each_event_is_recorded_once_with_what_it_meant_and_who_did_it() -> None:
    uow = AuditingUnitOfWork()
    boss = await an_admin(uow)
    issued = InvitationIssued(
        invitation_id=INVITATION,
        email="grace@example.com",
        expires_at=NOW + timedelta(days=7),
        token_hash="f" * 64,
        roles=["admin"],
    )
    link = InviteLinkIssued(
        link_id=LINK,
        token_hash="e" * 64,
        expires_at=None,
        max_uses=10,
        allowed_domain="example.com",
        issued_at=NOW,
    )
    events = [
        event(issued, actor=boss),
        event(issued, actor=boss, minutes=1),
        event(
            InvitationRevoked(invitation_id=INVITATION, token_hash="f" * 64, revoked_at=NOW),
            actor=boss,
            minutes=2,
        ),
        event(link, actor=boss, minutes=3),
        event(link.model_copy(update={"token_hash": "d" * 64}), actor=boss, minutes=4),
        event(InviteLinkRevoked(link_id=LINK, revoked_at=NOW), actor=boss, minutes=5),
        event(UserCreated(**snapshot()), actor=boss, minutes=6),
        event(
            UserCreated(
                **snapshot(user_id=uuid.uuid4(), username="eve", name="Eve"), invite_link_id=LINK
            ),
            minutes=7,
        ),
        event(
            UserCreated(
                **snapshot(user_id=uuid.uuid4(), username="grace", name="Grace"),
                invitation_id=INVITATION,
            ),
            minutes=8,
        ),
        event(
            UserUpdated(**snapshot(name="Ada L."), updated_at=NOW, changes=["name"]),
            actor=boss,
            minutes=9,
        ),
        event(
            UserUpdated(**snapshot(status="deactivated"), updated_at=NOW, changes=["deactivated"]),
            actor=boss,
            minutes=10,
        ),
        event(
            UserUpdated(**snapshot(), updated_at=NOW, changes=["deactivated"]),
            actor=boss,
            minutes=11,
        ),
        event(UserUpdated(**snapshot(), updated_at=NOW, changes=["avatar"]), actor=ADA, minutes=12),
        event(
            UserUpdated(**snapshot(status="active"), updated_at=NOW, changes=["status"]), minutes=13
        ),
    ]
    for delivered in events:
        await audit.record(uow, delivered)
    await audit.record(uow, events[0])  # redelivered: nothing twice

    trail = [(e.action, e.target_label, e.actor_name) for e in uow.audit.entries]
    assert trail == [
        (AuditAction.INVITED, "grace@example.com", "The Boss"),
        (AuditAction.INVITATION_RESENT, "grace@example.com", "The Boss"),
        (AuditAction.INVITATION_REVOKED, "grace@example.com", "The Boss"),
        (AuditAction.LINK_CREATED, "example.com", "The Boss"),
        (AuditAction.LINK_REGENERATED, "example.com", "The Boss"),
        (AuditAction.LINK_REVOKED, "example.com", "The Boss"),
        (AuditAction.USER_CREATED, "ada", "The Boss"),
        (AuditAction.LINK_REDEEMED, "eve", "Eve"),  # who: the person who joined
        (AuditAction.USER_JOINED, "grace", "Grace"),
        (AuditAction.USER_UPDATED, "ada", "The Boss"),
        (AuditAction.USER_DEACTIVATED, "ada", "The Boss"),
        (AuditAction.USER_REACTIVATED, "ada", "The Boss"),
        (AuditAction.AVATAR_CHANGED, "ada", None),  # an actor the trail cannot name
        (AuditAction.USER_ACTIVATED, "ada", "Ada"),  # the person who signed in
    ]
    assert uow.audit.entries[0].details == {
        "roles": ["admin"],
        "expires_at": (NOW + timedelta(days=7)).isoformat(),
    }
    assert uow.audit.entries[9].details["changes"] == ["name"]


async def test_no_secret_is_ever_recorded() -> None:
    uow = AuditingUnitOfWork()
    secret_hash = "9" * 64
    await audit.record(
        uow,
        event(
            InvitationIssued(
                invitation_id=INVITATION,
                email="grace@example.com",
                expires_at=NOW,
                token_hash=secret_hash,
            )
        ),
    )
    await audit.record(
        uow,
        event(
            InviteLinkIssued(
                link_id=LINK, token_hash=secret_hash, expires_at=None, max_uses=1, issued_at=NOW
            )
        ),
    )
    kept = json.dumps([entry.__dict__ for entry in uow.audit.entries], default=str)
    assert secret_hash not in kept and "token" not in kept
