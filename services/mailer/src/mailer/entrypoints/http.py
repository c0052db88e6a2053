"""HTTP routes of the mailer: what it can tell about its SMTP set-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from mailer.context import MailerContext
from onboarding_shared.auth import require_admin
from onboarding_shared.runtime import service_context

# Every route here is for admins: 401 without a valid token, 403 without the admin role.
router = APIRouter(prefix="/api/v1/mailer", tags=["mailer"], dependencies=[Depends(require_admin)])


Context = Annotated[MailerContext, Depends(service_context)]


class SmtpStatus(BaseModel):
    smtp_configured: bool


@router.get("/status")
async def smtp_status(context: Context) -> SmtpStatus:
    """Whether SMTP is configured; without it, emails wait in the queue."""
    return SmtpStatus(smtp_configured=context.settings.smtp_configured)
