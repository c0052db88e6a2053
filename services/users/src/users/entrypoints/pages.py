"""The page a welcome email's set-password link opens. The token stays in the URL's fragment,
which browsers never send to a server; the page's script posts it to the API.

The page an invitation's Join Chat link opens (`/join/{token}`): a plain form, no script, that
posts back to the same address; the same address also takes JSON."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field, ValidationError

from users.domain.invitations import LinkProblem
from users.domain.rules import InvalidFields
from users.entrypoints.http import MAX_SECRET, MAX_TEXT, Strict, UserOut
from users.service_layer import services
from users.service_layer.services import JoinForm, JoinRefused, JoinThrottled
from users.service_layer.unit_of_work import DuplicateField
from users.wiring import UsersContext

router = APIRouter(tags=["pages"])

_SCRIPT = """
const form = document.getElementById("set-password");
const message = document.getElementById("message");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
if (!token) { message.textContent = "This link is incomplete."; form.hidden = true; }
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/set-password", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token, password: document.getElementById("password").value}),
  });
  if (response.status === 204) {
    history.replaceState(null, "", location.pathname);
    form.hidden = true;
    message.textContent = "Your password is set. You can log in now.";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  const detail = Array.isArray(answer.detail) ? answer.detail.map((d) => d.msg).join("; ")
    : answer.detail;
  message.textContent = detail || "Something went wrong; try again.";
});
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_POLICY = (
    f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; connect-src 'self'; "
    "style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def _page(workspace_name: str, min_length: int) -> str:
    name = escape(workspace_name)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Set your password - {name}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:420px;margin:48px auto">
<h1 style="font-size:22px">Set your password for {name}</h1>
<form id="set-password">
<label for="password">New password (at least {min_length} characters)</label><br>
<input id="password" type="password" autocomplete="new-password" minlength="{min_length}"
 required style="width:100%;padding:8px;margin:8px 0">
<button type="submit" style="padding:8px 16px">Set password</button>
</form>
<p id="message" role="status"></p>
<script>{_SCRIPT}</script>
</body></html>"""


@router.get("/set-password", response_class=HTMLResponse, include_in_schema=False)
async def set_password_page(request: Request) -> HTMLResponse:
    context: UsersContext = request.app.state.context
    settings = context.settings
    return HTMLResponse(
        _page(settings.workspace_name, settings.password_min_length),
        headers={
            "Content-Security-Policy": _POLICY,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# Joining through an invitation

_JOIN_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_JOIN_HEADERS = {
    "Content-Security-Policy": _JOIN_POLICY,
    # The token is in the address: never hand it to another site or a shared cache.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_REFUSALS: dict[LinkProblem, tuple[int, str, str]] = {
    LinkProblem.UNKNOWN: (
        status.HTTP_404_NOT_FOUND,
        "This invitation link is not valid",
        "Check that you opened the whole link from the email, or ask an admin to invite you again.",
    ),
    LinkProblem.USED: (
        status.HTTP_410_GONE,
        "This invitation has already been used",
        "An account was created with it. If it is yours, log in.",
    ),
    LinkProblem.EXPIRED: (
        status.HTTP_410_GONE,
        "This invitation has expired",
        "Ask an admin to send it again.",
    ),
    LinkProblem.REVOKED: (
        status.HTTP_410_GONE,
        "This invitation was revoked",
        "Ask an admin if you still need an account.",
    ),
}
_DUPLICATES = {
    "username": "That username is already in use; choose another.",
    "email": "An account with this address exists already; log in instead.",
}


class JoinRequest(Strict):
    name: str = Field(max_length=MAX_TEXT)
    username: str = Field(max_length=MAX_TEXT)
    password: str = Field(max_length=MAX_SECRET)


def _shell(workspace_name: str, title: str, content: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - {escape(workspace_name)}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:420px;margin:48px auto">
{content}
</body></html>"""


def _message_page(workspace_name: str, title: str, text: str, login_url: str | None = None) -> str:
    link = (
        f'<p><a href="{escape(login_url)}" style="padding:8px 16px">Log in</a></p>'
        if login_url
        else ""
    )
    content = (
        f'<h1 style="font-size:22px">{escape(title)}</h1>\n<p role="status">{escape(text)}</p>'
        f"\n{link}"
    )
    return _shell(workspace_name, title, content)


def _field(label: str, name: str, value: str, kind: str = "text", extra: str = "") -> str:
    return (
        f'<label for="{name}">{escape(label)}</label><br>\n'
        f'<input id="{name}" name="{name}" type="{kind}" value="{escape(value)}" required {extra}'
        ' style="width:100%;padding:8px;margin:8px 0"><br>\n'
    )


def _join_page(
    workspace_name: str,
    email: str,
    min_length: int,
    *,
    values: dict[str, str] | None = None,
    problems: list[str] | None = None,
) -> str:
    values = values or {}
    name = escape(workspace_name)
    listed = "".join(f"<li>{escape(problem)}</li>" for problem in problems or [])
    errors = f'<ul role="alert" style="color:#b00020">{listed}</ul>\n' if listed else ""
    content = (
        f'<h1 style="font-size:22px">Join {name}</h1>\n'
        f"<p>You were invited as <strong>{escape(email)}</strong>.</p>\n"
        f"{errors}"
        '<form id="join" method="post">\n'
        + _field("Your name", "name", values.get("name", ""), extra='autocomplete="name"')
        + _field(
            "Username",
            "username",
            values.get("username", ""),
            extra='autocomplete="username" autocapitalize="none"',
        )
        + _field(
            f"Password (at least {min_length} characters)",
            "password",
            "",
            "password",
            f'autocomplete="new-password" minlength="{min_length}"',
        )
        + '<button type="submit" style="padding:8px 16px">Create my account</button>\n</form>'
    )
    return _shell(workspace_name, f"Join {workspace_name}", content)


def _html(page: str, code: int = status.HTTP_200_OK, **headers: str) -> HTMLResponse:
    return HTMLResponse(page, status_code=code, headers={**_JOIN_HEADERS, **headers})


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _refusal(error: JoinRefused | JoinThrottled, *, html: bool, workspace_name: str) -> Response:
    if isinstance(error, JoinThrottled):
        code, title = status.HTTP_429_TOO_MANY_REQUESTS, "Too many invalid invitation links"
        text = f"Too many invalid links from your network; try again in {error.retry_after}s."
        headers = {"Retry-After": str(error.retry_after)}
    else:
        code, title, text = _REFUSALS[error.problem]
        headers = {}
    if html:
        return _html(_message_page(workspace_name, title, text), code, **headers)
    return JSONResponse(
        {"detail": f"{title}. {text}"},
        status_code=code,
        headers={**headers, "Cache-Control": "no-store"},
    )


@router.get("/join/{token}", response_class=HTMLResponse, include_in_schema=False)
async def join_page(token: str, request: Request) -> Response:
    context: UsersContext = request.app.state.context
    settings = context.settings
    try:
        grant = await services.invitation_for_link(
            context.uow(),
            token,
            address=_client(request),
            throttling=settings.throttling,
            now=datetime.now(UTC),
        )
    except (JoinRefused, JoinThrottled) as error:
        return _refusal(error, html=True, workspace_name=settings.workspace_name)
    assert grant.email is not None
    return _html(_join_page(settings.workspace_name, grant.email, settings.password_min_length))


@router.post(
    "/join/{token}",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"model": UserOut, "description": "The account (JSON), or a page (form)"},
        404: {"description": "Unknown link"},
        409: {"description": "Username or address already in use"},
        410: {"description": "Used, expired or revoked link"},
        422: {"description": "A field breaks a rule"},
        429: {"description": "Too many unknown links from this client"},
    },
    tags=["joining"],
)
async def join(token: str, request: Request) -> Response:
    """Create an account with an invitation's link: JSON `{"name", "username", "password"}`, or
    the join page's form. The address is the invitation's; the account is pending, verified."""
    context: UsersContext = request.app.state.context
    settings = context.settings
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    as_form = content_type in _FORM_TYPES
    form = await _form_of(request) if as_form else await _json_of(request)
    try:
        user = await services.join(
            context.uow(),
            token,
            form,
            address=_client(request),
            policy=context.policy,
            hasher=context.hasher,
            throttling=settings.throttling,
            now=datetime.now(UTC),
        )
    except (JoinRefused, JoinThrottled) as error:
        return _refusal(error, html=as_form, workspace_name=settings.workspace_name)
    except (InvalidFields, DuplicateField) as error:
        if not as_form:
            raise  # the API's handlers answer 422 / 409 naming the fields
        return await _form_again(context, token, form, error, request)
    if not as_form:
        return JSONResponse(
            UserOut.of(user).model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )
    page = _message_page(
        settings.workspace_name,
        "Your account is ready",
        f"Your account is ready: log in as {user.username} with the password you chose.",
        login_url=context.policy.login_url,
    )
    return _html(page, status.HTTP_201_CREATED)


async def _form_of(request: Request) -> JoinForm:
    fields = await request.form()

    def text(name: str, limit: int) -> str:
        value = fields.get(name)
        return value[:limit] if isinstance(value, str) else ""

    return JoinForm(
        name=text("name", MAX_TEXT),
        username=text("username", MAX_TEXT),
        password=text("password", MAX_SECRET),
    )


async def _json_of(request: Request) -> JoinForm:
    try:
        body = JoinRequest.model_validate_json(await request.body())
    except ValidationError as invalid:
        # Without the input: it may be the password.
        raise RequestValidationError(
            [
                {"loc": ("body", *error["loc"]), "msg": error["msg"], "type": error["type"]}
                for error in invalid.errors()
            ]
        ) from None
    return JoinForm(name=body.name, username=body.username, password=body.password)


async def _form_again(
    context: UsersContext,
    token: str,
    form: JoinForm,
    error: InvalidFields | DuplicateField,
    request: Request,
) -> Response:
    """The form once more, with what to fix (never with the password)."""
    settings = context.settings
    if isinstance(error, DuplicateField):
        code = status.HTTP_409_CONFLICT
        problems = [_DUPLICATES.get(field, f"{field} is already in use") for field in error.fields]
    else:
        code = 422  # unprocessable content
        problems = [f"{field.capitalize()}: {msg}" for field, msg in error.problems.items()]
    try:
        grant = await services.invitation_for_link(
            context.uow(),
            token,
            address=_client(request),
            throttling=settings.throttling,
            now=datetime.now(UTC),
        )
    except (JoinRefused, JoinThrottled) as refused:
        return _refusal(refused, html=True, workspace_name=settings.workspace_name)
    assert grant.email is not None
    values = {"name": form.name, "username": form.username}
    page = _join_page(
        settings.workspace_name,
        grant.email,
        settings.password_min_length,
        values=values,
        problems=problems,
    )
    return _html(page, code)
