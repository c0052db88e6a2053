"""A cap on request bodies, answered with 413 before the body is read past it.

A pure ASGI middleware: a declared ``Content-Length`` above the limit is refused before a byte
of the body is read; a body without one (chunked) is counted as it streams in, and refused as
soon as it passes the limit. One limit for every route (``MAX_BODY_BYTES``, about 1 MB: every
JSON body and form here is far smaller), except the routes marked with :func:`body_limit`, whose
limit is another setting (an avatar upload, bounded by ``AVATAR_MAX_BYTES``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MARK = "__body_limit__"
# What a multipart envelope adds around an uploaded file: boundaries and part headers.
MULTIPART_ALLOWANCE = 64 * 1024

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Mark:
    setting: str
    allowance: int
    refusal: str | None


def body_limit(
    setting: str, *, allowance: int = MULTIPART_ALLOWANCE, refusal: str | None = None
) -> Callable[[EndpointT], EndpointT]:
    """Mark a route's endpoint (put it under the route decorator): its body may be as large as
    the service setting named ``setting``, plus ``allowance`` for the envelope around it.
    ``refusal`` is the 413's detail, ``{limit}`` standing for the setting's value."""

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _MARK, _Mark(setting, allowance, refusal))
        return endpoint

    return mark


@dataclass(frozen=True)
class RouteLimit:
    methods: frozenset[str]
    path: re.Pattern[str]
    max_bytes: int
    detail: str


def route_limits(routers: Sequence[APIRouter], settings: BaseModel) -> list[RouteLimit]:
    """The limits of the routes marked with :func:`body_limit`, read from ``settings``."""
    limits = []
    for router in routers:
        for route in router.routes:
            mark = getattr(getattr(route, "endpoint", None), _MARK, None)
            if isinstance(route, APIRoute) and isinstance(mark, _Mark):
                limit = int(getattr(settings, mark.setting))
                max_bytes = limit + mark.allowance
                detail = mark.refusal.format(limit=limit) if mark.refusal else _detail(max_bytes)
                limits.append(
                    RouteLimit(frozenset(route.methods or ()), route.path_regex, max_bytes, detail)
                )
    return limits


class BodyTooLarge(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


def _detail(max_bytes: int) -> str:
    return f"request body too large: at most {max_bytes} bytes"


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, overrides: Sequence[RouteLimit] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = tuple(overrides)

    def limit_for(self, method: str, path: str) -> tuple[int, str]:
        """The most bytes a request's body may have, and what a 413 says."""
        for override in self.overrides:
            if method in override.methods and override.path.match(path):
                return override.max_bytes, override.detail
        return self.max_bytes, _detail(self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, detail = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, detail)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            # Normally answered inside (it is an HTTPException); here when something between
            # let it through.
            if started:
                raise
            await _too_large(send, detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _too_large(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
