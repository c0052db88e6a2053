"""Keycloak user events as published by the keycloak-to-rabbitmq event listener.

Exchange `amq.topic` by default; routing key `KK.EVENT.CLIENT.<realm>.<SUCCESS|ERROR>.<client>.
<type>`, with dots removed from realm and client and spaces replaced by underscores. The body:

    {"time": 1732780000000, "type": "LOGIN", "realmId": "acme", "clientId": "chat",
     "userId": "f1c...", "ipAddress": "10.0.0.7", "sessionId": "...",
     "details": {"username": "ada", "email": "ada@example.com", "auth_method": "openid-connect"}}

Keycloak's userId is Keycloak's own id, not ours: accounts are matched by email or username.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from auth_listener.domain.model import Login

LOGIN_EVENT = "LOGIN"
MAX_FIELD = 320


class MalformedEvent(ValueError):
    """Not a Keycloak user event we can read; the reason is safe to log (no values)."""


def routing_key(realm: str, client: str) -> str:
    """The binding for successful logins; "*" matches any realm or client."""
    return f"KK.EVENT.CLIENT.{_segment(realm)}.SUCCESS.{_segment(client)}.LOGIN"


def _segment(name: str) -> str:
    return name if name in ("*", "#") else name.replace(".", "").replace(" ", "_")


def login_from_keycloak(body: bytes) -> Login | None:
    """The login the event reports; None for another event type or a failed login."""
    event = _object(body)
    if event.get("type") != LOGIN_EVENT or event.get("error"):
        return None
    details = event.get("details") or {}
    if not isinstance(details, dict):
        raise MalformedEvent("details is not an object")
    email = _text(details, "email")
    username = _text(details, "username")
    if not (email or username):
        raise MalformedEvent("neither details.email nor details.username is given")
    realm = _text(event, "realmId") or "unknown"
    return Login(
        logged_in_at=_time(event.get("time")),
        email=email,
        username=username,
        source=f"keycloak:{realm}"[:100],
    )


def _object(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent("not JSON") from None
    if not isinstance(event, dict):
        raise MalformedEvent("not a JSON object")
    return event


def _text(source: dict[str, Any], name: str) -> str | None:
    value = source.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise MalformedEvent(f"{name} is not a string of at most {MAX_FIELD} characters")
    return value


def _time(value: object) -> datetime:
    """Keycloak gives milliseconds since the epoch."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvent("time is not a number of milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvent("time is out of range") from None
