"""HTTP route of the audit trail: admins query who did what, to whom, and when."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from onboarding_shared.auth import require_admin
from onboarding_shared.list_queries import Limit, Offset, Page, Search
from users.domain.audit import AuditAction, TargetKind
from users.entrypoints.http import FROM_ATTRIBUTES, Context
from users.service_layer import audit
from users.service_layer.unit_of_work import AuditQuery

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], dependencies=[Depends(require_admin)])


class AuditEntryOut(BaseModel):
    model_config = FROM_ATTRIBUTES

    id: uuid.UUID = Field(validation_alias="event_id", description="The event's id.")
    occurred_at: datetime
    action: AuditAction
    target_kind: TargetKind
    target_id: uuid.UUID
    target_label: str | None = Field(description="The address or username it concerned.")
    actor_id: uuid.UUID | None = Field(description="Who did it; null: the system.")
    actor_name: str | None = Field(description="Their name when they did it.")
    details: dict[str, Any] = Field(description="Plain facts; never a link, token or password.")


class AuditList(Page[AuditEntryOut]):
    pass


@router.get("")
async def audit_trail(
    context: Context,
    action: AuditAction | None = None,
    actor_id: uuid.UUID | None = None,
    target_id: uuid.UUID | None = None,
    search: Search = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AuditList:
    """Newest first. `search` matches part of the target's address or username; `since` is
    inclusive, `until` exclusive (ISO 8601 with an offset)."""
    query = AuditQuery(
        action=action,
        actor_id=actor_id,
        target_id=target_id,
        search=search,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    page = await audit.trail(context.uow(), query)
    return AuditList(items=page.items, total=page.total, limit=limit, offset=offset)
