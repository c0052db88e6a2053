"""HTTP routes: validate, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    File,
    Header,
    HTTPException,
    Request,
    Response,
    UploadFile,
    status,
)
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from onboarding_shared.auth import AdminPrincipal, CurrentPrincipal
from onboarding_shared.body_limit import body_limit
from onboarding_shared.list_queries import ListParameters, Page
from onboarding_shared.runtime import service_context
from users.context import UsersContext
from users.domain.avatars import (
    AvatarRejected,
    AvatarTooLarge,
    AvatarTypeUnsupported,
    content_etag,
    initials_svg,
)
from users.domain.invitations import LinkProblem
from users.domain.model import LastAdmin, NewUser, NotAllowed, User, UserStatus
from users.domain.rules import InvalidFields
from users.service_layer import accounts, avatars, login
from users.service_layer.accounts import WelcomeEmailStatus
from users.service_layer.errors import (
    AccountDeactivated,
    InvalidLink,
    JoinRefused,
    JoinThrottled,
    LinkJoinsThrottled,
    LoginRefused,
    LoginThrottled,
    NotFound,
)
from users.service_layer.login import LoginAttempt
from users.service_layer.sessions import SessionEnded
from users.service_layer.unit_of_work import DuplicateField

LOGIN_ATTEMPTS = Counter(
    "onboarding_login_attempts_total",
    "Logins through POST /api/v1/auth/login, by outcome.",
    ["outcome"],
)

# Generous bounds on what is read at all; the domain's rules give the precise limits.
MAX_TEXT = 5_000
MAX_SECRET = 1_024
AVATAR_HEADERS = {
    "Cache-Control": "public, max-age=300, must-revalidate",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}

auth_router = APIRouter(prefix="/api/v1/auth", tags=["authentication"])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


Context = Annotated[UsersContext, Depends(service_context)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Answers are validated from the domain's objects (`Model.model_validate(obj)`): each field
# from the attribute of its name, unless its `validation_alias` says otherwise. The names they
# are answered with are always the fields' own.
FROM_ATTRIBUTES = ConfigDict(from_attributes=True)


class UserOut(BaseModel):
    model_config = FROM_ATTRIBUTES

    id: uuid.UUID
    name: str
    username: str
    email: str
    status: UserStatus
    roles: list[str]
    verified: bool
    require_password_change: bool
    nickname: str | None
    bio: str | None
    status_text: str | None
    created_at: datetime
    updated_at: datetime
    first_login_at: datetime | None
    deactivated_at: datetime | None
    avatar_url: str = Field(validation_alias="avatar_etag")

    @field_validator("avatar_url", mode="before")
    @classmethod
    def _avatar_url(cls, etag: str | None, info: ValidationInfo) -> str:
        return avatar_url(info.data["id"], etag)  # id, the first field, is validated already

    @classmethod
    def of(cls, user: User) -> UserOut:
        """The same as `model_validate(user)` (the pages' name for it)."""
        return cls.model_validate(user)


def avatar_url(user_id: uuid.UUID, etag: str | None) -> str:
    # The version changes with the picture, so caches may keep each version long.
    version = f"?v={etag[:12]}" if etag else ""
    return f"/api/v1/users/{user_id}/avatar{version}"


# Authentication


class LoginRequest(Strict):
    login: str = Field(min_length=1, max_length=MAX_TEXT, description="Username or email.")
    password: str = Field(min_length=1, max_length=MAX_SECRET)


class LoginResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int
    user: UserOut


@auth_router.post(
    "/login",
    responses={401: {"description": "Wrong login or password"}, 429: {"description": "Wait"}},
)
async def log_in(body: LoginRequest, request: Request, context: Context) -> LoginResponse:
    """An access token for the other endpoints (send it as `Authorization: Bearer ...`)."""
    attempt = LoginAttempt(body.login, body.password, request.client.host if request.client else "")
    try:
        logged_in = await login.log_in(
            context.uow(),
            attempt,
            hasher=context.hasher,
            tokens=context.tokens,
            throttling=context.settings.throttling,
            now=datetime.now(UTC),
        )
    except (LoginThrottled, LoginRefused, AccountDeactivated) as error:
        LOGIN_ATTEMPTS.labels(outcome=LOGIN_OUTCOMES[type(error)]).inc()
        raise refused(error) from None
    LOGIN_ATTEMPTS.labels(outcome="logged_in").inc()
    return LoginResponse(
        access_token=logged_in.token.access_token,
        expires_in=logged_in.token.expires_in,
        user=UserOut.model_validate(logged_in.user),
    )


class SetPasswordRequest(Strict):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=MAX_SECRET)


@auth_router.post(
    "/set-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={429: {"description": "Too many unknown links from this client: wait"}},
)
async def set_password(body: SetPasswordRequest, request: Request, context: Context) -> Response:
    """Set a password with the single-use link from the welcome email."""
    with answered_errors():
        await login.set_password_with_link(
            context.uow(),
            body.token,
            body.password,
            policy=context.policy,
            hasher=context.hasher,
            address=request.client.host if request.client else "",
            throttling=context.settings.throttling,
            now=datetime.now(UTC),
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Users


class CreateUserRequest(Strict):
    email: str = Field(max_length=MAX_TEXT)
    name: str = Field(max_length=MAX_TEXT)
    username: str = Field(max_length=MAX_TEXT)
    password: str | None = Field(default=None, max_length=MAX_SECRET)
    set_random_password: bool = False
    require_password_change: bool = False
    roles: list[Annotated[str, Field(max_length=100)]] = Field(default=["user"], max_length=20)
    verified: bool = False
    send_welcome_email: bool = False
    nickname: str | None = Field(default=None, max_length=MAX_TEXT)
    bio: str | None = Field(default=None, max_length=MAX_TEXT)
    status_text: str | None = Field(default=None, max_length=MAX_TEXT)


class WelcomeEmailOut(BaseModel):
    model_config = FROM_ATTRIBUTES

    status: WelcomeEmailStatus
    note: str | None = None


class CreatedUserOut(UserOut):
    welcome_email: WelcomeEmailOut


@users_router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(
    body: CreateUserRequest, admin: AdminPrincipal, context: Context
) -> CreatedUserOut:
    """Create an account by hand; it stays pending until its first login."""
    with answered_errors():
        created = await accounts.create_user(
            context.uow(),
            NewUser(**{**body.model_dump(), "roles": tuple(body.roles)}),
            actor=admin,
            policy=context.policy,
            hasher=context.hasher,
            smtp_status=context.smtp_status,
            now=datetime.now(UTC),
        )
    # The account's answer and its welcome email's, each validated: put together as they are.
    return CreatedUserOut.model_construct(
        **dict(UserOut.model_validate(created.user)),
        welcome_email=WelcomeEmailOut.model_validate(created.welcome_email),
    )


class UserList(Page[UserOut]):
    pass


@users_router.get("")
async def list_users(
    _admin: AdminPrincipal,
    context: Context,
    window: ListParameters,
    status: UserStatus | None = None,
) -> UserList:
    """Newest first; `search` matches name, username or email (`q` is its old name)."""
    page = await accounts.list_users(
        context.uow(),
        status=status,
        search=window.search,
        limit=window.limit,
        offset=window.offset,
    )
    return UserList(items=page.items, total=page.total, limit=window.limit, offset=window.offset)


@users_router.get("/{user_id}")
async def get_user(user_id: uuid.UUID, _admin: AdminPrincipal, context: Context) -> UserOut:
    with answered_errors():
        user = await accounts.get_user(context.uow(), user_id)
    return UserOut.model_validate(user)


class UpdateUserRequest(Strict):
    name: str | None = Field(default=None, max_length=MAX_TEXT)
    username: str | None = Field(default=None, max_length=MAX_TEXT)
    email: str | None = Field(default=None, max_length=MAX_TEXT)
    roles: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=20)
    nickname: str | None = Field(default=None, max_length=MAX_TEXT)
    bio: str | None = Field(default=None, max_length=MAX_TEXT)
    status_text: str | None = Field(default=None, max_length=MAX_TEXT)
    verified: bool | None = None
    require_password_change: bool | None = None
    deactivated: bool | None = Field(
        default=None, description="true deactivates, false reactivates."
    )


@users_router.patch("/{user_id}")
async def update_user(
    user_id: uuid.UUID, body: UpdateUserRequest, admin: AdminPrincipal, context: Context
) -> UserOut:
    """Change only the fields given; null clears nickname, bio and status_text."""
    with answered_errors():
        user = await accounts.update_user(
            context.uow(),
            user_id,
            body.model_dump(exclude_unset=True),
            actor=admin,
            now=datetime.now(UTC),
        )
    return UserOut.model_validate(user)


# Avatars


class AvatarOut(BaseModel):
    avatar_url: str
    etag: str


@users_router.put("/{user_id}/avatar")
# 413 before reading past the picture's limit (plus its multipart envelope).
@body_limit("avatar_max_bytes", refusal="image refused: larger than {limit} bytes")
async def put_avatar(
    user_id: uuid.UUID,
    image: Annotated[UploadFile, File(description="PNG, JPEG, GIF or WebP")],
    principal: CurrentPrincipal,
    context: Context,
) -> AvatarOut:
    """By an admin, or by the account's owner."""
    data = await image.read(context.settings.avatar_max_bytes + 1)
    with answered_errors():
        avatar = await avatars.set_avatar(
            context.uow(),
            user_id,
            data,
            actor=principal,
            processor=context.avatars,
            now=datetime.now(UTC),
        )
    return AvatarOut(avatar_url=avatar_url(user_id, avatar.etag), etag=avatar.etag)


@users_router.delete("/{user_id}/avatar", status_code=status.HTTP_204_NO_CONTENT)
async def delete_avatar(
    user_id: uuid.UUID, principal: CurrentPrincipal, context: Context
) -> Response:
    """Back to the default picture drawn from the initials."""
    with answered_errors():
        await avatars.reset_avatar(context.uow(), user_id, actor=principal, now=datetime.now(UTC))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@users_router.get(
    "/{user_id}/avatar",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
async def get_avatar(
    user_id: uuid.UUID,
    context: Context,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Public, like avatars in chat clients (an <img> sends no token)."""
    with answered_errors():
        user, avatar = await avatars.avatar_of(context.uow(), user_id)
    if avatar is not None:
        content, media_type, etag = avatar.content, avatar.media_type, avatar.etag
    else:
        content = initials_svg(user.name, user.id, context.settings.avatar_size).encode()
        media_type, etag = "image/svg+xml", content_etag(content)
    headers = {**AVATAR_HEADERS, "ETag": f'"{etag}"'}
    if if_none_match is not None and f'"{etag}"' in if_none_match:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


# Refusals of the service layer, as answers

# What each refusal answers, in one table; the first match counts (a subclass before its base).
# The pages and the sign-in form answer with these statuses too, in their own words.
ERROR_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (InvalidFields, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (DuplicateField, status.HTTP_409_CONFLICT),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (NotAllowed, status.HTTP_403_FORBIDDEN),
    (LastAdmin, status.HTTP_409_CONFLICT),
    (InvalidLink, status.HTTP_400_BAD_REQUEST),
    (AvatarTooLarge, status.HTTP_413_CONTENT_TOO_LARGE),
    (AvatarTypeUnsupported, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    # A PNG, JPEG, GIF or WebP in name only.
    (AvatarRejected, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (LoginThrottled, status.HTTP_429_TOO_MANY_REQUESTS),
    (LoginRefused, status.HTTP_401_UNAUTHORIZED),
    (AccountDeactivated, status.HTTP_403_FORBIDDEN),
    (SessionEnded, status.HTTP_401_UNAUTHORIZED),
    (JoinThrottled, status.HTTP_429_TOO_MANY_REQUESTS),
    (LinkJoinsThrottled, status.HTTP_429_TOO_MANY_REQUESTS),
    (JoinRefused, status.HTTP_410_GONE),  # unless LINK_PROBLEM_STATUSES says otherwise
)
# A refused join link answers by what is wrong with it.
LINK_PROBLEM_STATUSES: dict[LinkProblem, int] = {
    LinkProblem.UNKNOWN: status.HTTP_404_NOT_FOUND,
    # The invitation is faulty, not the link: nothing the invitee can fix, and no guess.
    LinkProblem.UNKNOWN_ROLE: status.HTTP_409_CONFLICT,
}
# The logins' metric, by outcome.
LOGIN_OUTCOMES: dict[type[Exception], str] = {
    LoginThrottled: "throttled",
    LoginRefused: "refused",
    AccountDeactivated: "deactivated",
}
_REFUSALS = tuple(kind for kind, _ in ERROR_STATUSES)
_WAITS = (LoginThrottled, JoinThrottled, LinkJoinsThrottled)


def status_of(error: Exception) -> int:
    """The status a refusal answers (ERROR_STATUSES)."""
    if isinstance(error, JoinRefused) and error.problem in LINK_PROBLEM_STATUSES:
        return LINK_PROBLEM_STATUSES[error.problem]
    return next(code for kind, code in ERROR_STATUSES if isinstance(error, kind))


def refused(error: Exception, headers: dict[str, str] | None = None) -> HTTPException:
    """A refusal as its answer: its status; as the detail, the fields at fault or its message;
    Retry-After when it knows how long to wait."""
    waits = {"Retry-After": str(error.retry_after)} if isinstance(error, _WAITS) else {}
    return HTTPException(status_of(error), _detail(error), headers={**waits, **(headers or {})})


@contextmanager
def answered_errors() -> Iterator[None]:
    """A refusal becomes its answer (refused)."""
    try:
        yield
    except _REFUSALS as error:
        raise refused(error) from None


def _detail(error: Exception) -> str | list[dict[str, Any]]:
    if isinstance(error, InvalidFields):
        return _field_problems(error.problems, "value_error")
    if isinstance(error, DuplicateField):
        problems = {name: f"{name} is already in use" for name in error.fields}
        return _field_problems(problems, "duplicate")
    return str(error)


def _field_problems(problems: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [{"loc": ["body", name], "msg": msg, "type": kind} for name, msg in problems.items()]


routers = [auth_router, users_router]
