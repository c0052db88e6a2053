"""Error answers every service gives: 422s that never repeat what was sent, and 503s while the
database is unreachable.

FastAPI's default answer to a request that fails validation lists each problem with the
``input`` it was given: a password that is one character too long, a token, a 10 MB body, all
come back in the answer (and in any log or proxy that keeps answers). Here each problem keeps its
location, message and type, and of its context only the limits the schema states (lengths,
bounds, the pattern, the accepted values), never anything taken from the request.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from onboarding_shared.outages import is_outage

log = logging.getLogger(__name__)

# Context entries that come from the schema, not from the input.
_SCHEMA_CONTEXT = frozenset(
    {
        "min_length",
        "max_length",
        "ge",
        "gt",
        "le",
        "lt",
        "multiple_of",
        "max_digits",
        "decimal_places",
        "pattern",
        "expected",
        "expected_tags",
        "discriminator",
    }
)
_PROBLEM_KEYS = ("loc", "msg", "type")


def without_input(problem: dict[str, Any]) -> dict[str, Any]:
    """One validation problem, stripped of anything echoing the request."""
    kept = {key: problem[key] for key in _PROBLEM_KEYS if key in problem}
    context = problem.get("ctx")
    if isinstance(context, dict):
        safe = {key: value for key, value in context.items() if key in _SCHEMA_CONTEXT}
        if safe:
            kept["ctx"] = safe
    return kept


async def validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = [without_input(problem) for problem in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


def answer_validation_errors_without_input(app: FastAPI) -> None:
    """Install the handler on ``app`` (every service does, through create_http_app)."""
    app.add_exception_handler(RequestValidationError, validation_error)


# 503 answers: the database (or the network to it) is away. The request's transaction was never
# committed (the unit of work commits last, and a failed commit leaves nothing), so the client
# may simply send it again.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = "The service is temporarily unavailable; try again shortly."


async def unavailable(request: Request, error: Exception) -> JSONResponse:
    if not is_outage(error):
        raise error  # a bug: the server error middleware answers 500 and logs it
    log.warning(
        "database unreachable: answered 503",
        extra={"path": request.url.path, "error": type(error).__name__},
    )
    return JSONResponse(
        {"detail": UNAVAILABLE_DETAIL},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def answer_outages_with_503(app: FastAPI) -> None:
    """While the database is unreachable every API answers a JSON 503 with Retry-After, not a
    bare 500 (every service does, through create_http_app)."""
    for error in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError):
        app.add_exception_handler(error, unavailable)
