"""Which errors say that a dependency is away (503 / kept in hand), and which do not."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from onboarding_shared.outages import DependencyUnavailable, is_outage


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def dbapi_error(sqlstate: str) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, DriverError(sqlstate))


@pytest.mark.parametrize(
    "sqlstate",
    ["53300", "53100", "57P01", "57P03", "08006"],
    ids=["too many clients", "disk full", "admin shutdown", "starting up", "connection failure"],
)
def test_a_server_that_cannot_serve_now_is_an_outage(sqlstate: str) -> None:
    assert is_outage(dbapi_error(sqlstate))


@pytest.mark.parametrize("sqlstate", ["23505", "42P01", "22001"])
def test_a_refusal_of_the_statement_is_not(sqlstate: str) -> None:
    assert not is_outage(dbapi_error(sqlstate))


def test_an_unavailable_smtp_server_is_an_outage_and_a_bug_is_not() -> None:
    assert is_outage(DependencyUnavailable("SMTP server unavailable"))
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert not is_outage(ValueError("a bug"))
