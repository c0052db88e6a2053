"""The cost of a CSV import (issue 13 §3), beside the same addresses posted as the text area
posts them, in the same run: the invitations service in this process, on a fresh PostgreSQL
database and a RabbitMQ vhost of its own (its events go out; no mailer reads them).

    .venv/bin/python devtools/bench_csv.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import auth
from tests.support.broker import eventually
from tests.support.factories import INVITATION_TOKEN_SECRET
from tests.support.services import in_process

from devtools.bench_infra import Resources, fresh_database, private_vhost
from invitations.bootstrap import MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from onboarding_shared.schema import migrate

TEXT_AREA_REQUEST = 500


def settings(amqp_url: str, database_url: str) -> InvitationsSettings:
    return InvitationsSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        invitation_token_secret=INVITATION_TOKEN_SECRET,
        max_invitations_per_day=1_000_000,
        imports_check_seconds=0.05,
        **auth.verifier_settings(),
    )


async def csv_import(client: httpx.AsyncClient, rows: int) -> tuple[float, float]:
    """Seconds until the file is accepted, and until its job is done."""
    data = "email,name\n" + "".join(f"csv{n}@example.com,Person {n}\n" for n in range(rows))
    headers = {**auth.admin_headers(), "content-type": "text/csv"}
    started = time.perf_counter()
    answer = await client.post("/api/v1/invitations/imports", content=data, headers=headers)
    assert answer.status_code == 202, answer.text
    accepted = time.perf_counter() - started
    job_url = f"/api/v1/invitations/imports/{answer.json()['id']}"
    await eventually(lambda: _done(client, job_url), interval=0.05, timeout=600)
    return accepted, time.perf_counter() - started


async def _done(client: httpx.AsyncClient, job_url: str) -> bool:
    answer = await client.get(job_url, headers=auth.admin_headers())
    return bool(answer.json()["status"] == "done")


async def text_area(client: httpx.AsyncClient, rows: int) -> float:
    """Seconds for the same number of addresses in requests of 500, one after the other."""
    started = time.perf_counter()
    for first in range(0, rows, TEXT_AREA_REQUEST):
        emails = [f"typed{n}@example.com" for n in range(first, min(first + 500, rows))]
        answer = await client.post(
            "/api/v1/invitations", json={"emails": emails}, headers=auth.admin_headers()
        )
        assert answer.status_code == 202, answer.text
    return time.perf_counter() - started


async def measure(rows: int) -> None:
    with Resources() as resources:
        amqp_url = private_vhost(resources)
        database_url = fresh_database(resources, "csv")
        await asyncio.to_thread(migrate, database_url, MIGRATIONS)
        async with in_process(create_invitations, settings(amqp_url, database_url)) as client:
            typed = await text_area(client, rows)
            accepted, done = await csv_import(client, rows)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"CSV import of {rows} rows: accepted in {accepted:.2f} s, done in {done:.2f} s "
          f"({rows / done:,.0f} rows/s)")  # fmt: skip
    print(f"the same number of addresses typed, {TEXT_AREA_REQUEST} a request: {typed:.2f} s "
          f"({rows / typed:,.0f} addresses/s); ratio CSV/typed {done / typed:.2f}")  # fmt: skip
    print(f"peak RSS of this process (service and client): {peak_mb:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    asyncio.run(measure(parser.parse_args().rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
