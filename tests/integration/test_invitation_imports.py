"""CSV bulk invitations through the invitations API, on the real database and broker: a file is
accepted or refused whole, worked through in the background (resumed after a restart), and its
per-row results download as a CSV that no spreadsheet would run."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from invitations.bootstrap import MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from tests.support.auth import admin_headers, verifier_settings
from tests.support.broker import EventProbe, Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process

pytestmark = pytest.mark.integration

IMPORTS = "/api/v1/invitations/imports"
ADMIN = admin_headers()
CSV = {**ADMIN, "content-type": "text/csv"}


@pytest.fixture
async def settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> InvitationsSettings:
    url = await databases.create_migrated("invitations", MIGRATIONS)
    return InvitationsSettings(
        **service_settings(namespace, amqp_url, url),
        **verifier_settings(),
        imports_check_seconds=0.1,
        max_invitations_per_day=300,
        max_import_bytes=20_000,
    )


async def finished(api: httpx.AsyncClient, import_id: str) -> dict[str, object] | None:
    job = (await api.get(f"{IMPORTS}/{import_id}", headers=ADMIN)).json()
    return job if job["status"] == "done" else None


async def test_a_file_is_invited_row_by_row_and_its_results_download_safely(
    settings: InvitationsSettings, probe: EventProbe
) -> None:
    rows = "".join(f"person{n}@example.com,Person {n},\n" for n in range(250))
    data = ('email,name,roles\nada@example.com,Ada,admin\nbroken@,"Broken, Row",\n' + rows).encode()
    async with in_process(create_invitations, settings) as api:
        started = await api.post(
            IMPORTS, content=data, headers=CSV, params={"filename": "team.csv"}
        )
        assert started.status_code == 202, started.text
        job = started.json()
        assert (job["total_rows"], job["filename"]) == (252, "team.csv")
        assert job["outcomes"] == {"invalid": 1}  # known as soon as the file is read
        done = await eventually(lambda: finished(api, job["id"]), timeout=30)
        results = await api.get(f"{IMPORTS}/{job['id']}/results.csv", headers=ADMIN)
        listed = (await api.get("/api/v1/invitations", headers=ADMIN)).json()["total"]
        issued = await eventually(
            lambda: (
                len(probe.events("invitation.issued.v1")) == 251
                and probe.events("invitation.issued.v1")
            ),
            timeout=30,
        )

    assert done["queued"] == 251 and done["processed_rows"] == 252
    assert done["outcomes"] == {"queued": 251, "invalid": 1}
    assert listed == 251
    assert results.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(results.text)))
    assert [row["row"] for row in table[:3]] == ["2", "3", "4"]
    assert (table[0]["roles"], table[0]["outcome"]) == ("admin", "queued")
    assert (table[1]["name"], table[1]["outcome"]) == ("Broken, Row", "invalid")
    [ada] = [e for e in issued if e["data"]["email"] == "ada@example.com"]
    assert ada["data"]["roles"] == ["admin"]


async def test_a_bad_file_is_refused_whole_with_nothing_created(
    settings: InvitationsSettings,
) -> None:
    async with in_process(create_invitations, settings) as api:
        formula = await api.post(
            IMPORTS, content=b"email,name\nada@example.com,=cmd|' /C calc'!A0\n", headers=CSV
        )
        assert formula.status_code == 422
        assert "row 2, column `name`" in formula.json()["detail"]
        latin = await api.post(
            IMPORTS, content="email\nadé@example.com\n".encode("latin-1"), headers=CSV
        )
        assert latin.status_code == 422 and "UTF-8" in latin.json()["detail"]
        over_the_day = "email\n" + "".join(f"p{n}@example.com\n" for n in range(301))
        limited = await api.post(IMPORTS, content=over_the_day.encode(), headers=CSV)
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        too_big = await api.post(IMPORTS, content=b"email\n" + b"a" * 30_000, headers=CSV)
        assert too_big.status_code == 413
        assert (await api.get("/api/v1/invitations", headers=ADMIN)).json()["total"] == 0
        assert (await api.post(IMPORTS, content=b"email\na@example.com\n")).status_code == 401


async def test_an_import_accepted_before_a_restart_is_finished_after_it(
    settings: InvitationsSettings,
) -> None:
    data = ("email\n" + "".join(f"p{n}@example.com\n" for n in range(30))).encode()
    paused = settings.model_copy(update={"imports_check_seconds": 3600})
    async with in_process(create_invitations, paused) as api:
        # The job's first pass runs at start-up, before the file exists; the next in an hour.
        job = (await api.post(IMPORTS, content=data, headers=CSV)).json()
        assert (await api.get(f"{IMPORTS}/{job['id']}", headers=ADMIN)).json()["queued"] == 0
    async with in_process(create_invitations, settings) as api:
        done = await eventually(lambda: finished(api, job["id"]), timeout=30)
    assert done["queued"] == 30
