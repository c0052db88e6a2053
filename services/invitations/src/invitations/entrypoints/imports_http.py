"""HTTP routes of CSV bulk invitations: upload a file, follow its job, download its results."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from pydantic import AliasPath, BaseModel, Field, field_validator

from invitations.domain.imports import ImportedRow, ImportStatus, spreadsheet_safe
from invitations.entrypoints.http import (
    Context,
    answered_errors,
    attributes_of,
    plain_text_message,
)
from invitations.service_layer import imports
from invitations.service_layer.imports import ImportCommand
from onboarding_shared.auth import AdminPrincipal, require_admin
from onboarding_shared.body_limit import body_limit

router = APIRouter(
    prefix="/api/v1/invitations/imports",
    tags=["invitations"],
    dependencies=[Depends(require_admin)],
)

RESULT_COLUMNS = ("row", "email", "name", "roles", "outcome", "reason", "invitation_id")


class ImportOptions(BaseModel):
    message: str | None = Field(
        default=None, max_length=1000, description="Plain text shown (escaped) in every email."
    )
    expires_in_hours: int | None = Field(
        default=None, description="Within the limits the service is configured with."
    )
    notify_inviter: bool = Field(default=True, description="Email me when each one joins.")
    filename: str | None = Field(
        default=None, max_length=255, description="The file's name, to show it back."
    )

    @field_validator("message")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        return plain_text_message(value)


class ImportOut(BaseModel):
    # Validated from an ImportProgress: its job's attributes, and its outcomes.
    model_config = attributes_of("job")

    id: uuid.UUID
    status: ImportStatus
    filename: str | None
    total_rows: int
    processed_rows: int = Field(description="Rows worked through so far.")
    queued: int = Field(description="Invitations created so far.")
    outcomes: dict[str, int] = Field(
        validation_alias="outcomes", description="Rows worked through, by outcome."
    )
    created_at: datetime
    finished_at: datetime | None
    results_url: str = Field(
        validation_alias=AliasPath("job", "id"), description="Every row with its outcome, as CSV."
    )

    @field_validator("results_url", mode="before")
    @classmethod
    def _results_url(cls, import_id: uuid.UUID) -> str:
        return f"{router.prefix}/{import_id}/results.csv"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        403: {"description": "A role the inviter may not hand out"},
        413: {"description": "Too many rows, or too large a file"},
        422: {"description": "The file cannot be read; the detail names the row and column"},
        429: {"description": "The file would pass the daily limit"},
    },
)
@body_limit("max_import_bytes", allowance=0, refusal="file refused: larger than {limit} bytes")
async def start_import(
    request: Request,
    options: Annotated[ImportOptions, Query()],
    context: Context,
    admin: AdminPrincipal,
) -> ImportOut:
    """Invite every row of a CSV file (UTF-8; columns `email`, optional `name` and `roles`;
    comma, semicolon or tab separated), as a background job. The file is accepted or refused
    whole: nothing is created when it is malformed or would pass a limit."""
    command = ImportCommand(
        data=await request.body(),
        inviter_id=admin.user_id,
        inviter_is_admin=admin.is_admin,
        filename=options.filename,
        message=options.message,
        expires_in_hours=options.expires_in_hours,
        notify_inviter=options.notify_inviter,
    )
    with answered_errors():
        progress = await imports.start_import(
            context.uow(), command, policy=context.invite_policy, now=datetime.now(UTC)
        )
    return ImportOut.model_validate(progress)


@router.get("/{import_id}", responses={404: {"description": "No such import"}})
async def get_import(import_id: uuid.UUID, context: Context) -> ImportOut:
    with answered_errors():
        return ImportOut.model_validate(await imports.import_progress(context.uow(), import_id))


@router.get(
    "/{import_id}/results.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One line per row of the file"},
        404: {"description": "No such import"},
    },
)
async def import_results(import_id: uuid.UUID, context: Context) -> Response:
    """Every row with its outcome (empty while not worked through yet). Cells a spreadsheet
    would run as formulas are quoted."""
    with answered_errors():
        rows = await imports.import_rows(context.uow(), import_id)
    return Response(
        _results_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="invitations-{import_id}.csv"'},
    )


def _results_csv(rows: list[ImportedRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    for row in rows:
        cells = (
            str(row.number),
            row.email or row.given,
            row.name or "",
            " ".join(row.roles),
            row.outcome or "",
            row.reason or "",
            str(row.invitation_id or ""),
        )
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return out.getvalue()
