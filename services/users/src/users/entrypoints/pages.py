"""The page a welcome email's set-password link opens. The token stays in the URL's fragment,
which browsers never send to a server; the page's script (static/set-password.js) posts it to
the API.

The page an invitation's Join Chat link opens (`/join/{token}`): a plain form, no script, that
posts back to the same address; the same address also takes JSON.

The page a reusable invite link opens (`/join/link/{token}`): the same, asking for the address
too, since the link names nobody."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field, ValidationError

from users.context import UsersContext
from users.domain.invitations import InvitationGrant, LinkProblem
from users.domain.invite_links import InviteLinkGrant
from users.domain.model import User
from users.domain.rules import ADMIN_ROLE, MAX_EMAIL_LENGTH, InvalidFields
from users.entrypoints.http import (
    MAX_SECRET,
    MAX_TEXT,
    Context,
    Strict,
    UserOut,
    refused,
    status_of,
)
from users.entrypoints.templating import SECRET_ADDRESS, render
from users.service_layer import joining
from users.service_layer.errors import JoinRefused, JoinThrottled, LinkJoinsThrottled
from users.service_layer.joining import JoinForm, LinkJoinForm
from users.service_layer.unit_of_work import DuplicateField

StrictT = TypeVar("StrictT", bound=Strict)

router = APIRouter(tags=["pages"])


@router.get("/set-password", response_class=HTMLResponse, include_in_schema=False)
async def set_password_page(request: Request, context: Context) -> HTMLResponse:
    settings = context.settings
    return render(
        request,
        "set_password.html",
        settings.workspace_name,
        headers=SECRET_ADDRESS,
        min_length=settings.password_min_length,
    )


# Joining through an invitation

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# What a refused invitation link reads: a title and what to do (the status is the API's).
_REFUSALS: dict[LinkProblem, tuple[str, str]] = {
    LinkProblem.UNKNOWN: (
        "This invitation link is not valid",
        "Check that you opened the whole link from the email, or ask an admin to invite you again.",
    ),
    LinkProblem.USED: (
        "This invitation has already been used",
        "An account was created with it. If it is yours, log in.",
    ),
    LinkProblem.EXPIRED: (
        "This invitation has expired",
        "Ask an admin to send it again.",
    ),
    LinkProblem.REVOKED: (
        "This invitation was revoked",
        "Ask an admin if you still need an account.",
    ),
    LinkProblem.UNKNOWN_ROLE: (
        "This invitation cannot be used",
        "It gives a role this workspace does not have. Ask an admin to invite you again.",
    ),
}
# The same answers for a reusable invite link, in its words.
_LINK_REFUSALS: dict[LinkProblem, tuple[str, str]] = {
    LinkProblem.UNKNOWN: (
        "This invite link is not valid",
        "Check that you opened the whole link; if it was regenerated, ask for the new one.",
    ),
    LinkProblem.USED: (
        "This invite link has been used up",
        "It has created all the accounts it may. Ask an admin for a new link; if you already "
        "have an account, log in.",
    ),
    LinkProblem.EXPIRED: (
        "This invite link has expired",
        "Ask an admin for a new link.",
    ),
    LinkProblem.REVOKED: (
        "This invite link was revoked",
        "Ask an admin if you still need an account.",
    ),
    LinkProblem.UNKNOWN_ROLE: (
        "This invite link cannot be used",
        "It gives a role this workspace does not have. Ask an admin for a new link.",
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


def _message_page(
    request: Request,
    workspace_name: str,
    heading: str,
    text: str,
    code: int = status.HTTP_200_OK,
    *,
    sign_in_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "message.html",
        workspace_name,
        code,
        {**SECRET_ADDRESS, **(headers or {})},
        heading=heading,
        text=text,
        sign_in_url=sign_in_url,
    )


def _join_page(
    request: Request,
    workspace_name: str,
    grant: InvitationGrant,
    min_length: int,
    code: int = status.HTTP_200_OK,
    *,
    values: dict[str, str] | None = None,
    problems: list[str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "join.html",
        workspace_name,
        code,
        SECRET_ADDRESS,
        email=grant.email,
        allowed_domain=None,
        as_admin=ADMIN_ROLE in grant.roles,
        min_length=min_length,
        values=values or {"name": "", "username": ""},
        problems=problems or [],
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _refusal(
    request: Request,
    error: JoinRefused | JoinThrottled | LinkJoinsThrottled,
    *,
    html: bool,
    workspace_name: str,
    refusals: dict[LinkProblem, tuple[str, str]] = _REFUSALS,
) -> Response:
    code = status_of(error)
    if isinstance(error, JoinThrottled):
        title = "Too many invalid invitation links"
        text = f"Too many invalid links from your network; try again in {error.retry_after}s."
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, LinkJoinsThrottled):
        title = "Too many new accounts"
        text = (
            "Too many accounts were made through invite links from your network; try again in "
            f"{error.retry_after}s."
        )
        headers = {"Retry-After": str(error.retry_after)}
    else:
        title, text = refusals[error.problem]
        headers = {}
    if html:
        return _message_page(request, workspace_name, title, text, code, headers=headers)
    return JSONResponse(
        {"detail": f"{title}. {text}"},
        status_code=code,
        headers={**headers, "Cache-Control": "no-store"},
    )


@router.get("/join/{token}", response_class=HTMLResponse, include_in_schema=False)
async def join_page(token: str, request: Request, context: Context) -> Response:
    settings = context.settings
    try:
        grant = await joining.invitation_for_link(
            context.uow(),
            token,
            address=_client(request),
            throttling=settings.throttling,
            now=datetime.now(UTC),
        )
    except (JoinRefused, JoinThrottled) as error:
        return _refusal(request, error, html=True, workspace_name=settings.workspace_name)
    return _join_page(request, settings.workspace_name, grant, settings.password_min_length)


@router.post(
    "/join/{token}",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"model": UserOut, "description": "The account (JSON), or a page (form)"},
        404: {"description": "Unknown link"},
        409: {
            "description": "Username or address already in use, or the invitation gives a role "
            "this service does not know"
        },
        410: {"description": "Used, expired or revoked link"},
        422: {"description": "A field breaks a rule"},
        429: {"description": "Too many unknown links from this client"},
    },
    tags=["joining"],
)
async def join(token: str, request: Request, context: Context) -> Response:
    """Create an account with an invitation's link: JSON `{"name", "username", "password"}`, or
    the join page's form. The address is the invitation's; the account is pending, verified."""
    settings = context.settings
    as_form = _is_form(request)
    form = await _form_of(request) if as_form else await _json_of(request)
    try:
        user = await joining.join(
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
        return _refusal(request, error, html=as_form, workspace_name=settings.workspace_name)
    except (InvalidFields, DuplicateField) as error:
        if not as_form:
            raise refused(error) from None
        return await _form_again(context, token, form, error, request)
    return _account_ready(request, context, user, as_form=as_form)


async def _form_of(request: Request) -> JoinForm:
    text = await _form_text(request)
    return JoinForm(
        name=text("name", MAX_TEXT),
        username=text("username", MAX_TEXT),
        password=text("password", MAX_SECRET),
    )


async def _json_of(request: Request) -> JoinForm:
    body = await _validated(request, JoinRequest)
    return JoinForm(name=body.name, username=body.username, password=body.password)


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type in _FORM_TYPES


async def _form_text(request: Request) -> Callable[[str, int], str]:
    """A reader of the posted form's fields: text, cut to a limit, empty when absent."""
    fields = await request.form()

    def text(name: str, limit: int) -> str:
        value = fields.get(name)
        return value[:limit] if isinstance(value, str) else ""

    return text


async def _validated(request: Request, model: type[StrictT]) -> StrictT:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as invalid:
        # Without the input: it may be the password.
        raise RequestValidationError(
            [
                {"loc": ("body", *error["loc"]), "msg": error["msg"], "type": error["type"]}
                for error in invalid.errors()
            ]
        ) from None


def _account_ready(
    request: Request, context: UsersContext, user: User, *, as_form: bool
) -> Response:
    """The new account as JSON, or a page pointing to the sign-in."""
    if not as_form:
        return JSONResponse(
            UserOut.of(user).model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )
    return _message_page(
        request,
        context.settings.workspace_name,
        "Your account is ready",
        f"Your account is ready: sign in as {user.username} with the password you chose.",
        status.HTTP_201_CREATED,
        sign_in_url=context.policy.login_url,
    )


def _problems_of(error: InvalidFields | DuplicateField) -> tuple[int, list[str]]:
    if isinstance(error, DuplicateField):
        problems = [_DUPLICATES.get(field, f"{field} is already in use") for field in error.fields]
    else:
        problems = [f"{field.capitalize()}: {msg}" for field, msg in error.problems.items()]
    return status_of(error), problems


async def _form_again(
    context: UsersContext,
    token: str,
    form: JoinForm,
    error: InvalidFields | DuplicateField,
    request: Request,
) -> Response:
    """The form once more, with what to fix (never with the password)."""
    settings = context.settings
    code, problems = _problems_of(error)
    try:
        grant = await joining.invitation_for_link(
            context.uow(),
            token,
            address=_client(request),
            throttling=settings.throttling,
            now=datetime.now(UTC),
        )
    except (JoinRefused, JoinThrottled) as refused:
        return _refusal(request, refused, html=True, workspace_name=settings.workspace_name)
    values = {"name": form.name, "username": form.username}
    return _join_page(
        request,
        settings.workspace_name,
        grant,
        settings.password_min_length,
        code,
        values=values,
        problems=problems,
    )


# Joining through a reusable invite link


class LinkJoinRequest(Strict):
    email: str = Field(max_length=MAX_EMAIL_LENGTH)
    name: str = Field(max_length=MAX_TEXT)
    username: str = Field(max_length=MAX_TEXT)
    password: str = Field(max_length=MAX_SECRET)


_LinkErrors = JoinRefused | JoinThrottled | LinkJoinsThrottled


def _link_refusal(
    request: Request, error: _LinkErrors, *, html: bool, workspace_name: str
) -> Response:
    return _refusal(
        request, error, html=html, workspace_name=workspace_name, refusals=_LINK_REFUSALS
    )


def _join_link_page(
    request: Request,
    workspace_name: str,
    grant: InviteLinkGrant,
    min_length: int,
    code: int = status.HTTP_200_OK,
    *,
    values: dict[str, str] | None = None,
    problems: list[str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "join.html",
        workspace_name,
        code,
        SECRET_ADDRESS,
        email=None,  # the link names nobody: the page asks
        allowed_domain=grant.allowed_domain,
        as_admin=ADMIN_ROLE in grant.roles,
        min_length=min_length,
        values=values or {"email": "", "name": "", "username": ""},
        problems=problems or [],
    )


async def _link_for(context: UsersContext, token: str, request: Request) -> InviteLinkGrant:
    return await joining.invite_link_for_token(
        context.uow(),
        token,
        address=_client(request),
        throttling=context.settings.throttling,
        now=datetime.now(UTC),
    )


@router.get("/join/link/{token}", response_class=HTMLResponse, include_in_schema=False)
async def join_link_page(token: str, request: Request, context: Context) -> Response:
    settings = context.settings
    try:
        grant = await _link_for(context, token, request)
    except (JoinRefused, JoinThrottled, LinkJoinsThrottled) as error:
        return _link_refusal(request, error, html=True, workspace_name=settings.workspace_name)
    return _join_link_page(request, settings.workspace_name, grant, settings.password_min_length)


@router.post(
    "/join/link/{token}",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"model": UserOut, "description": "The account (JSON), or a page (form)"},
        404: {"description": "Unknown link (or one since regenerated)"},
        409: {
            "description": "Username or address already in use, or the link gives a role this "
            "service does not know"
        },
        410: {"description": "Used up, expired or revoked link"},
        422: {"description": "A field breaks a rule, or the address is outside the link's domain"},
        429: {
            "description": "Too many unknown links, or too many accounts made through links, "
            "from this client"
        },
    },
    tags=["joining"],
)
async def join_link(token: str, request: Request, context: Context) -> Response:
    """Create an account with a reusable invite link: JSON `{"email", "name", "username",
    "password"}`, or the page's form. The address must be at the link's domain when it has one;
    the account is pending, not verified, with the link's roles."""
    settings = context.settings
    as_form = _is_form(request)
    form = await _link_form_of(request) if as_form else await _link_json_of(request)
    try:
        user = await joining.join_by_link(
            context.uow(),
            token,
            form,
            address=_client(request),
            policy=context.policy,
            hasher=context.hasher,
            throttling=settings.throttling,
            now=datetime.now(UTC),
        )
    except (JoinRefused, JoinThrottled, LinkJoinsThrottled) as error:
        return _link_refusal(request, error, html=as_form, workspace_name=settings.workspace_name)
    except (InvalidFields, DuplicateField) as error:
        if not as_form:
            raise refused(error) from None
        return await _link_form_again(context, token, form, error, request)
    return _account_ready(request, context, user, as_form=as_form)


async def _link_form_of(request: Request) -> LinkJoinForm:
    text = await _form_text(request)
    return LinkJoinForm(
        email=text("email", MAX_EMAIL_LENGTH),
        name=text("name", MAX_TEXT),
        username=text("username", MAX_TEXT),
        password=text("password", MAX_SECRET),
    )


async def _link_json_of(request: Request) -> LinkJoinForm:
    body = await _validated(request, LinkJoinRequest)
    return LinkJoinForm(
        email=body.email, name=body.name, username=body.username, password=body.password
    )


async def _link_form_again(
    context: UsersContext,
    token: str,
    form: LinkJoinForm,
    error: InvalidFields | DuplicateField,
    request: Request,
) -> Response:
    """The form once more, with what to fix (never with the password)."""
    settings = context.settings
    code, problems = _problems_of(error)
    try:
        grant = await _link_for(context, token, request)
    except (JoinRefused, JoinThrottled, LinkJoinsThrottled) as refused:
        return _link_refusal(request, refused, html=True, workspace_name=settings.workspace_name)
    values = {"email": form.email, "name": form.name, "username": form.username}
    return _join_link_page(
        request,
        settings.workspace_name,
        grant,
        settings.password_min_length,
        code,
        values=values,
        problems=problems,
    )
