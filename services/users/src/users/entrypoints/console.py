"""PUBLIC_URL's root, where people go: the sign-in form, the console for admins, a short
"you are in" page for members; signing in and out; renewing a session while it is used.

A session is a token in an HttpOnly, SameSite=Lax cookie (Secure when PUBLIC_URL is https);
scripts never see it. Requests that change something with it need the page's CSRF token too
(onboarding_shared.auth). Signing in checks the form came from our own origin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from onboarding_shared.auth import (
    SESSION_COOKIE,
    CurrentPrincipal,
    InvalidToken,
    Principal,
    TokenVerifier,
    csrf_matches,
)
from users.context import UsersContext
from users.domain.model import User
from users.entrypoints.http import (
    LOGIN_ATTEMPTS,
    LOGIN_OUTCOMES,
    MAX_SECRET,
    MAX_TEXT,
    Context,
    avatar_url,
    refused,
    status_of,
)
from users.entrypoints.templating import render
from users.service_layer import sessions
from users.service_layer.errors import AccountDeactivated, LoginRefused, LoginThrottled
from users.service_layer.login import LoginAttempt
from users.service_layer.sessions import SessionEnded, SignedIn

router = APIRouter(include_in_schema=False)
session_router = APIRouter(prefix="/api/v1/auth", tags=["authentication"])

# What a person reads when a sign-in is refused (the status is the API's). Wrong login and wrong
# password read the same.
_REFUSALS: dict[type[Exception], str] = {
    LoginThrottled: "Too many failed attempts. Try again in {seconds} seconds.",
    LoginRefused: "Wrong username, email or password.",
    AccountDeactivated: "This account is deactivated. Ask an admin if you need it again.",
}
_NOTICES = {
    "ended": "Your session has ended. Sign in again.",
    "signed-out": "You have signed out.",
}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, context: Context) -> Response:
    principal = _session_principal(request)
    user = (
        await sessions.session_user(
            context.uow(), principal, sessions=context.settings.sessions, now=datetime.now(UTC)
        )
        if principal
        else None
    )
    if principal is None or principal.session is None or user is None:
        notice = _NOTICES.get(request.query_params.get("session", ""))
        response = _sign_in_page(request, context, notice=notice)
        if request.cookies.get(SESSION_COOKIE):
            _forget_session(response, context)
        return response
    if user.is_admin:
        return _page(
            request,
            context,
            "console.html",
            user=user,
            csrf_token=principal.session.csrf,
            idle_seconds=context.settings.session_idle_minutes * 60,
        )
    return _page(
        request,
        context,
        "member.html",
        user=user,
        csrf_token=principal.session.csrf,
        chat_url=context.settings.chat_url or context.settings.public_url,
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    context: Context,
    login: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    password: Annotated[str, Form(max_length=MAX_SECRET)] = "",
) -> Response:
    """The sign-in form's target; a sign-in is a login (UserLoggedIn), like the API's."""
    if not _from_our_origin(request, context):
        return _sign_in_page(
            request,
            context,
            error=f"Sign in from {context.settings.public_url}/.",
            code=status.HTTP_403_FORBIDDEN,
        )
    attempt = LoginAttempt(login, password, request.client.host if request.client else "")
    try:
        signed_in = await sessions.sign_in(
            context.uow(),
            attempt,
            hasher=context.hasher,
            tokens=context.tokens,
            throttling=context.settings.throttling,
            sessions=context.settings.sessions,
            now=datetime.now(UTC),
        )
    except (LoginThrottled, LoginRefused, AccountDeactivated) as error:
        LOGIN_ATTEMPTS.labels(outcome=LOGIN_OUTCOMES[type(error)]).inc()
        message = _REFUSALS[type(error)]
        if isinstance(error, LoginThrottled):
            message = message.format(seconds=error.retry_after)
        return _sign_in_page(
            request, context, login=login[:320], error=message, code=status_of(error)
        )
    LOGIN_ATTEMPTS.labels(outcome="logged_in").inc()
    response = RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    _remember_session(response, context, signed_in)
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request,
    context: Context,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    principal = _session_principal(request)
    if principal is not None and not csrf_matches(principal, csrf_token):
        return _page(
            request,
            context,
            "message.html",
            code=status.HTTP_403_FORBIDDEN,
            heading="You are still signed in",
            text="This sign-out did not come from our own page. Use the Sign out button.",
        )
    response = RedirectResponse("/?session=signed-out", status_code=status.HTTP_303_SEE_OTHER)
    _forget_session(response, context)
    return response


class SessionOut(BaseModel):
    expires_in: int


@session_router.post("/session", responses={401: {"description": "The session has ended"}})
async def renew_session(
    principal: CurrentPrincipal, context: Context, response: Response
) -> SessionOut:
    """Keep a browser session alive while its owner uses it (cookie and CSRF token)."""
    try:
        renewed = await sessions.renew_session(
            context.uow(),
            principal,
            tokens=context.tokens,
            sessions=context.settings.sessions,
            now=datetime.now(UTC),
        )
    except SessionEnded as ended:
        forget = Response()
        _forget_session(forget, context)
        raise refused(ended, headers={"Set-Cookie": forget.headers["set-cookie"]}) from None
    _remember_session(response, context, renewed)
    return SessionOut(expires_in=renewed.token.expires_in)


# Helpers


def _session_principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    verifier = request.app.state.token_verifier
    if not token or not isinstance(verifier, TokenVerifier):
        return None
    try:
        principal = verifier.verify(token)
    except InvalidToken:
        return None
    return principal if principal.session is not None else None


def _from_our_origin(request: Request, context: UsersContext) -> bool:
    """Browsers send Origin with every form POST; a missing one is a client that is not a
    browser, which cannot be tricked into signing in."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return _origin_of(origin) == _origin_of(context.settings.public_url)


def _origin_of(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port as browsers compare them: case-blind, default ports implied."""
    parts = urlsplit(url.strip().lower())
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    return parts.scheme, parts.hostname or "", port


def _remember_session(response: Response, context: UsersContext, signed_in: SignedIn) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.token.access_token,
        httponly=True,
        samesite="lax",
        secure=context.settings.public_url.startswith("https://"),
        path="/",
    )


def _forget_session(response: Response, context: UsersContext) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=context.settings.public_url.startswith("https://"),
    )


def _sign_in_page(
    request: Request,
    context: UsersContext,
    *,
    login: str = "",
    error: str | None = None,
    notice: str | None = None,
    code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    return _page(
        request, context, "sign_in.html", code=code, login=login, error=error, notice=notice
    )


def _page(
    request: Request,
    context: UsersContext,
    template: str,
    code: int = status.HTTP_200_OK,
    user: User | None = None,
    **values: Any,
) -> HTMLResponse:
    if user is not None:
        values.update(user=user, avatar_url=avatar_url(user.id, user.avatar_etag))
    return render(request, template, context.settings.workspace_name, code, **values)
