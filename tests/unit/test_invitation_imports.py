"""CSV bulk invitations with fakes: reading a file safely, refusing it whole, and the job that
gives every row the text area's outcome plus its row number."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from invitations.domain.imports import (
    BadImportFile,
    ImportedRow,
    ImportJob,
    ImportStatus,
    ImportTooLarge,
    read_import,
    spreadsheet_safe,
)
from invitations.domain.model import Member, RoleNotAllowed
from invitations.service_layer import imports
from invitations.service_layer.imports import ImportCommand
from invitations.service_layer.services import DailyLimitReached, TooManyAddresses
from invitations.service_layer.unit_of_work import ImportRepository
from tests.unit.test_invitation_services import MINTER, NOW, POLICY, FakeUnitOfWork, invite


def test_rows_are_read_with_their_spreadsheet_numbers_names_and_roles() -> None:
    rows = read_import(
        "\ufeffEmail,Name,Roles\r\n"
        "ada@example.com,Ada Lovelace,admin user\r\n"
        ",,\r\n"
        '"grace@example.com","Hopper, Grace",\r\n'.encode()
    )
    assert [(r.number, r.email, r.name, r.roles) for r in rows] == [
        (2, "ada@example.com", "Ada Lovelace", ("admin", "user")),
        (4, "grace@example.com", "Hopper, Grace", ()),
    ]


def test_semicolons_as_many_spreadsheets_write_them() -> None:
    [row] = read_import(b"name;email;roles\nAda;ada@example.com;admin,user\n")
    assert (row.email, row.name, row.roles) == ("ada@example.com", "Ada", ("admin", "user"))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("email\nadé@example.com\n".encode("latin-1"), "not UTF-8 text"),
        (b"name,address\nAda,ada@example.com\n", "no `email` column"),
        (b"", "empty"),
        (b"email\n\n", "no rows"),
        (
            b"email,name\nada@example.com,=cmd|' /C calc'!A0\n",
            "row 2, column `name` starts with '='",
        ),
        (b"email\n  +1+2@example.com\n", "row 2, column `email` starts with '+'"),
        (b"email,name\nada@example.com,@SUM(1)\n", "which a spreadsheet would run as a formula"),
        (b'email\n"ada@example.com\n', "not valid CSV"),
    ],
)
def test_a_malformed_file_is_refused_with_a_clear_reason(data: bytes, problem: str) -> None:
    with pytest.raises(BadImportFile) as refused:
        read_import(data)
    assert problem in str(refused.value)


def test_more_rows_than_allowed_is_refused() -> None:
    data = "email\n" + "".join(f"p{n}@example.com\n" for n in range(11))
    with pytest.raises(ImportTooLarge, match="more than 10 rows"):
        read_import(data.encode(), max_rows=10)


def test_cells_exported_back_cannot_run_as_formulas() -> None:
    assert spreadsheet_safe('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert spreadsheet_safe(" -2+3") == "' -2+3"
    assert spreadsheet_safe("ada@example.com") == "ada@example.com"


class FakeImports(ImportRepository):
    def __init__(self) -> None:
        self.jobs: dict[uuid.UUID, ImportJob] = {}
        self.by_job: dict[uuid.UUID, list[ImportedRow]] = {}

    def add(self, job: ImportJob) -> None:
        self.jobs[job.id] = job

    def add_rows(self, rows: list[ImportedRow]) -> None:  # type: ignore[override]
        for row in rows:
            self.by_job.setdefault(row.import_id, []).append(row)

    async def get(self, import_id: uuid.UUID) -> ImportJob | None:
        return self.jobs.get(import_id)

    async def next_unfinished(self) -> ImportJob | None:
        unfinished = [j for j in self.jobs.values() if j.status is not ImportStatus.DONE]
        return min(unfinished, key=lambda j: j.created_at, default=None)

    async def unsettled_rows(self, import_id: uuid.UUID, limit: int) -> list[ImportedRow]:
        return [r for r in self.by_job.get(import_id, []) if r.outcome is None][:limit]

    async def rows(self, import_id: uuid.UUID) -> list[ImportedRow]:
        return list(self.by_job.get(import_id, []))

    async def outcome_counts(self, import_id: uuid.UUID) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.by_job.get(import_id, []):
            if row.outcome is not None:
                counts[row.outcome] = counts.get(row.outcome, 0) + 1
        return counts


class ImportingUnitOfWork(FakeUnitOfWork):
    imports: FakeImports

    def __init__(self) -> None:
        super().__init__()
        self.imports = FakeImports()


def csv_of(*lines: str) -> bytes:
    return ("email,name,roles\n" + "\n".join(lines) + "\n").encode()


UPLOADER = uuid.uuid4()


async def start(uow: ImportingUnitOfWork, data: bytes, **fields: object) -> ImportJob:
    command = ImportCommand(
        data=data,
        inviter_id=UPLOADER,
        inviter_is_admin=True,
        **fields,  # type: ignore[arg-type]
    )
    return (await imports.start_import(uow, command, policy=POLICY, now=NOW)).job


async def work(uow: ImportingUnitOfWork) -> None:
    while await imports.work_on_imports(uow, policy=POLICY, minter=MINTER, now=NOW):
        pass


async def test_every_row_gets_the_text_areas_outcome_and_its_row_number() -> None:
    uow = ImportingUnitOfWork()
    uow.members.add(Member(uuid.uuid4(), "grace@example.com", "Grace", "active", NOW))
    await invite(uow, "linus@example.com")
    job = await start(
        uow,
        csv_of(
            "ada@example.com,Ada,admin",
            "broken@,,",
            "grace@example.com,,",
            "linus@example.com,,",
            "ADA@example.com,,",
        ),
    )
    assert (job.status, job.total_rows, job.reserved) == (ImportStatus.RUNNING, 5, 1)
    await work(uow)
    rows = await uow.imports.rows(job.id)
    assert [(r.number, r.outcome) for r in rows] == [
        (2, "queued"),
        (3, "invalid"),
        (4, "already_member"),
        (5, "already_invited"),
        (6, "duplicate_in_request"),
    ]
    assert (job.status, job.processed_rows, job.queued) == (ImportStatus.DONE, 5, 1)
    [issued] = [e for e in uow.events("InvitationIssued") if e.data.email == "ada@example.com"]
    assert issued.data.roles == ["admin"] and rows[0].invitation_id == issued.data.invitation_id
    # Invited in the background, yet in the name of the admin who uploaded the file.
    assert issued.actor_id == UPLOADER


async def test_a_large_file_is_worked_through_in_chunks_each_committed() -> None:
    uow = ImportingUnitOfWork()
    policy = replace(POLICY, max_invitations_per_day=1000)
    command = ImportCommand(
        data=csv_of(*(f"p{n}@example.com,," for n in range(450))), inviter_is_admin=True
    )
    job = (await imports.start_import(uow, command, policy=policy, now=NOW)).job
    commits = uow.commits
    assert await imports.work_on_imports(uow, policy=policy, minter=MINTER, now=NOW) == 200
    assert (job.status, job.processed_rows) == (ImportStatus.RUNNING, 200)
    await work(uow)
    assert (job.status, job.processed_rows, job.queued) == (ImportStatus.DONE, 450, 450)
    assert uow.commits - commits == 3
    assert len(uow.events("InvitationRequested")) == 450


async def test_limits_apply_to_the_whole_file_and_nothing_is_created() -> None:
    uow = ImportingUnitOfWork()
    with pytest.raises(DailyLimitReached):
        await start(uow, csv_of(*(f"p{n}@example.com,," for n in range(11))))  # the day's 10
    small = replace(POLICY, max_addresses_per_import=3)
    command = ImportCommand(data=csv_of(*(f"q{n}@example.com,," for n in range(4))))
    with pytest.raises(TooManyAddresses, match="4 rows"):
        await imports.start_import(uow, command, policy=small, now=NOW)
    with pytest.raises(BadImportFile, match="row 3, column `roles`: unknown role"):
        await start(uow, csv_of("a@example.com,,user", "b@example.com,,owner"))
    with pytest.raises(RoleNotAllowed):
        await imports.start_import(
            uow, ImportCommand(data=csv_of("a@example.com,,admin")), policy=POLICY, now=NOW
        )
    assert uow.imports.jobs == {} and uow.invitations.rows == {}
    assert all(quota.used == 0 for quota in uow.quotas.days.values())


async def test_quota_reserved_for_rows_that_need_no_invitation_by_then_is_given_back() -> None:
    uow = ImportingUnitOfWork()
    job = await start(uow, csv_of("ada@example.com,,", "grace@example.com,,"))
    assert uow.quotas.days[job.quota_day].used == 2
    await invite(uow, "grace@example.com")  # invited by hand before the job got to it
    await work(uow)
    assert (job.queued, uow.quotas.days[job.quota_day].used) == (1, 2)  # 1 by hand, 1 by file


async def test_a_file_of_only_invalid_rows_is_done_at_once() -> None:
    uow = ImportingUnitOfWork()
    job = await start(uow, csv_of("broken@,,", "also broken,,"))
    assert (job.status, job.processed_rows, job.finished_at) == (ImportStatus.DONE, 2, NOW)
    assert await imports.work_on_imports(uow, policy=POLICY, minter=MINTER, now=NOW) == 0
