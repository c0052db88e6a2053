"""Tables of the auth-listener database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from sqlalchemy.orm import registry

from onboarding_shared.db import new_metadata
from onboarding_shared.messaging.inbox import define_inbox_table
from onboarding_shared.messaging.outbox import define_outbox_table
from onboarding_shared.unit_of_work import MessagingTables

metadata = new_metadata()
mapper_registry = registry(metadata=metadata)

messaging = MessagingTables(
    outbox=define_outbox_table(metadata), inbox=define_inbox_table(metadata)
)


def map_domain() -> None:
    """Nothing to map yet."""
