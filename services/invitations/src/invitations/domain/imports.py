"""Bulk invitations from a CSV file: reading it safely, and the job that works through it.

A file is refused whole, with a reason naming the row and column, when it cannot be read as
what it claims to be: not UTF-8, no `email` column, more rows than allowed, or a cell that a
spreadsheet would run as a formula (`=cmd|' /C calc'!A0`), since the results go back to the
admin as a CSV and the same cells could end up in someone's spreadsheet.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MAX_IMPORT_ROWS = 5000
MAX_FIELD_LENGTH = 1000
EMAIL_COLUMNS = ("email", "e-mail", "email address", "e-mail address")
NAME_COLUMNS = ("name", "full name", "display name")
ROLES_COLUMNS = ("roles", "role")
# What a spreadsheet treats as the start of a formula (OWASP's list, tab and CR included).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROLE_SEPARATORS = re.compile(r"[\s,;|]+")
_UTF8_BOM = b"\xef\xbb\xbf"


class BadImportFile(ValueError):
    """The file cannot be imported as it is; the message says where and why."""


class ImportTooLarge(BadImportFile):
    pass


@dataclass(frozen=True)
class ImportRow:
    number: int  # as a spreadsheet numbers it: the header is row 1
    email: str
    name: str | None = None
    roles: tuple[str, ...] = ()


def read_import(data: bytes, *, max_rows: int = MAX_IMPORT_ROWS) -> list[ImportRow]:
    """The file's data rows (blank rows skipped), or BadImportFile."""
    lines = _rows(_text(data))
    header = next(lines, None)
    if header is None:
        raise BadImportFile("the file is empty: it needs a header row with an `email` column")
    columns = _columns(header)
    rows: list[ImportRow] = []
    for number, cells in enumerate(lines, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) == max_rows:
            raise ImportTooLarge(f"the file has more than {max_rows} rows; split it")
        rows.append(_row(number, cells, columns))
    if not rows:
        raise BadImportFile("the file has a header but no rows to invite")
    return rows


def _text(data: bytes) -> str:
    try:
        return data.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadImportFile(
            f"the file is not UTF-8 text (byte {error.start + 1}); "
            "save it as “CSV UTF-8” and upload it again"
        ) from None


def _rows(text: str) -> Iterator[list[str]]:
    first_line = text.split("\n", 1)[0]
    # Spreadsheets in many locales write semicolons; the header tells which one this file uses.
    delimiter = max((",", ";", "\t"), key=first_line.count)
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    except csv.Error as error:
        raise BadImportFile(f"the file is not valid CSV: {error}") from None


@dataclass(frozen=True)
class _Columns:
    email: int
    name: int | None
    roles: int | None
    names: tuple[str, ...]


def _columns(header: Sequence[str]) -> _Columns:
    names = tuple(cell.strip().lower() for cell in header)

    def find(accepted: tuple[str, ...]) -> int | None:
        return next((i for i, name in enumerate(names) if name in accepted), None)

    email = find(EMAIL_COLUMNS)
    if email is None:
        raise BadImportFile(
            "no `email` column: the first row must name the columns, e.g. `email,name,roles`"
        )
    return _Columns(email, find(NAME_COLUMNS), find(ROLES_COLUMNS), names)


def _row(number: int, cells: Sequence[str], columns: _Columns) -> ImportRow:
    for index, value in enumerate(cells):
        _check_cell(number, columns.names[index] if index < len(columns.names) else "", value)

    def cell(index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    roles = tuple(role for role in _ROLE_SEPARATORS.split(cell(columns.roles)) if role)
    return ImportRow(number, cell(columns.email), cell(columns.name) or None, roles)


def _check_cell(number: int, column: str, value: str) -> None:
    where = f"row {number}, column `{column}`" if column else f"row {number}"
    # Leading spaces do not stop a spreadsheet from reading a formula.
    if (start := value.lstrip(" ")).startswith(FORMULA_STARTS):
        raise BadImportFile(
            f"{where} starts with {start[0]!r}, which a spreadsheet would run as a formula; "
            "remove it"
        )
    if len(value) > MAX_FIELD_LENGTH:
        raise BadImportFile(f"{where} is longer than {MAX_FIELD_LENGTH} characters")


def spreadsheet_safe(value: str) -> str:
    """A cell for a CSV someone will open in a spreadsheet: one that would start a formula is
    prefixed with a quote, so it shows as text (OWASP's advice for CSV injection)."""
    return f"'{value}" if value.lstrip(" ").startswith(FORMULA_STARTS) else value


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(eq=False)
class ImportedRow:
    """One row of an import job, and once worked through, what became of it."""

    import_id: uuid.UUID
    number: int
    given: str
    name: str | None = None
    roles: list[str] = field(default_factory=list)
    outcome: str | None = None  # an InviteOutcome's value, once the row was worked through
    email: str | None = None
    invitation_id: uuid.UUID | None = None
    reason: str | None = None

    def settle(
        self,
        outcome: str,
        *,
        email: str | None = None,
        invitation_id: uuid.UUID | None = None,
        reason: str | None = None,
    ) -> None:
        self.outcome, self.email, self.invitation_id, self.reason = (
            outcome,
            email,
            invitation_id,
            reason,
        )


@dataclass(eq=False)
class ImportJob:
    """A CSV file being invited, a chunk of rows per transaction: a restart resumes it."""

    id: uuid.UUID
    inviter_id: uuid.UUID | None
    status: ImportStatus
    total_rows: int
    created_at: datetime
    ttl_hours: int
    quota_day: str
    reserved: int  # invitations taken from the day's quota when the file was accepted
    processed_rows: int = 0
    queued: int = 0
    message: str | None = None
    notify_inviter: bool = True
    filename: str | None = None
    finished_at: datetime | None = None

    def record_chunk(self, rows: Sequence[ImportedRow], queued: int, *, now: datetime) -> None:
        """Rows settled, by the job or when the file came in; done once all are."""
        self.processed_rows += len(rows)
        self.queued += queued
        if self.processed_rows >= self.total_rows:
            self.finish(now)
        elif self.processed_rows:
            self.status = ImportStatus.RUNNING

    def finish(self, now: datetime) -> None:
        self.status = ImportStatus.DONE
        self.finished_at = now

    @property
    def unused_quota(self) -> int:
        """Reserved but not needed: rows that had become members or invited meanwhile."""
        return max(self.reserved - self.queued, 0) if self.status is ImportStatus.DONE else 0
