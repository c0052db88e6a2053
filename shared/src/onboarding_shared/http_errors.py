"""422 answers that never repeat what was sent.

FastAPI's default answer to a request that fails validation lists each problem with the
``input`` it was given: a password that is one character too long, a token, a 10 MB body, all
come back in the answer (and in any log or proxy that keeps answers). Here each problem keeps its
location, message and type, and of its context only the limits the schema states (lengths,
bounds, the pattern, the accepted values), never anything taken from the request.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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
