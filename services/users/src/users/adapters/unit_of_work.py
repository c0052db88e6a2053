from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from onboarding_shared.orm import RepositoriesUnitOfWork, SessionBound
from users.adapters.repository import (
    SqlAlchemyAuditRepository,
    SqlAlchemyAvatarRepository,
    SqlAlchemyInvitationGrantRepository,
    SqlAlchemyInviteLinkGrantRepository,
    SqlAlchemyThrottleRepository,
    SqlAlchemyUserRepository,
)
from users.service_layer.unit_of_work import DuplicateField, UsersUnitOfWork

# The unique constraints that stand for a field an admin can fix.
_FIELD_OF_CONSTRAINT = {"uq_users_email_key": "email", "uq_users_username_key": "username"}


class SqlAlchemyUsersUnitOfWork(RepositoriesUnitOfWork, UsersUnitOfWork):
    users = SessionBound(SqlAlchemyUserRepository)
    throttles = SessionBound(SqlAlchemyThrottleRepository)
    avatars = SessionBound(SqlAlchemyAvatarRepository)
    grants = SessionBound(SqlAlchemyInvitationGrantRepository)
    links = SessionBound(SqlAlchemyInviteLinkGrantRepository)
    audit = SessionBound(SqlAlchemyAuditRepository)

    async def commit(self) -> None:
        """A concurrent request may take the same email or username between our check and our
        commit: the unique constraint then decides, and the caller gets DuplicateField."""
        try:
            await super().commit()
        except IntegrityError as error:
            await self.rollback()
            text = str(error.orig)
            fields = [field for name, field in _FIELD_OF_CONSTRAINT.items() if name in text]
            # SQLite names columns, not constraints.
            fields += [
                f
                for c, f in (("users.email_key", "email"), ("users.username_key", "username"))
                if c in text
            ]
            if not fields:
                raise
            raise DuplicateField(*dict.fromkeys(fields)) from None
