"""HTTP routes: validate, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
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
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from onboarding_shared.auth import AdminPrincipal, CurrentPrincipal
from onboarding_shared.body_limit import body_limit
from onboarding_shared.list_queries import DeprecatedSearch, Limit, Offset, Search, search_term
from users.domain.avatars import AvatarRejected, AvatarTooLarge, content_etag, initials_svg
from users.domain.model import LastAdmin, NewUser, NotAllowed, User, UserStatus
from users.domain.rules import InvalidFields
from users.service_layer import services
from users.service_layer.services import (
    AccountDeactivated,
    InvalidLink,
    LoginAttempt,
    LoginRefused,
    LoginThrottled,
    NotFound,
    WelcomeEmailStatus,
)
from users.service_layer.unit_of_work import DuplicateField
from users.wiring import UsersContext

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


def _context(request: Request) -> UsersContext:
    context: UsersContext = request.app.state.context
    return context


Context = Annotated[UsersContext, Depends(_context)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserOut(BaseModel):
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
    avatar_url: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            username=user.username,
            email=user.email,
            status=user.status,
            roles=list(user.roles),
            verified=user.verified,
            require_password_change=user.require_password_change,
            nickname=user.nickname,
            bio=user.bio,
            status_text=user.status_text,
            created_at=user.created_at,
            updated_at=user.updated_at,
            first_login_at=user.first_login_at,
            deactivated_at=user.deactivated_at,
            avatar_url=avatar_url(user),
        )


def avatar_url(user: User) -> str:
    # The version changes with the picture, so caches may keep each version long.
    version = f"?v={user.avatar_etag[:12]}" if user.avatar_etag else ""
    return f"/api/v1/users/{user.id}/avatar{version}"


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
        logged_in = await services.log_in(
            context.uow(),
            attempt,
            hasher=context.hasher,
            tokens=context.tokens,
            throttling=context.settings.throttling,
            now=datetime.now(UTC),
        )
    except LoginThrottled as throttled:
        LOGIN_ATTEMPTS.labels(outcome="throttled").inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed logins; try again later",
            headers={"Retry-After": str(throttled.retry_after)},
        ) from None
    except LoginRefused:
        LOGIN_ATTEMPTS.labels(outcome="refused").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid login or password") from None
    except AccountDeactivated:
        LOGIN_ATTEMPTS.labels(outcome="deactivated").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account is deactivated") from None
    LOGIN_ATTEMPTS.labels(outcome="logged_in").inc()
    return LoginResponse(
        access_token=logged_in.token.access_token,
        expires_in=logged_in.token.expires_in,
        user=UserOut.of(logged_in.user),
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
    try:
        await services.set_password_with_link(
            context.uow(),
            body.token,
            body.password,
            policy=context.policy,
            hasher=context.hasher,
            address=request.client.host if request.client else "",
            throttling=context.settings.throttling,
            now=datetime.now(UTC),
        )
    except LoginThrottled as throttled:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many invalid links; try again later",
            headers={"Retry-After": str(throttled.retry_after)},
        ) from None
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
    status: WelcomeEmailStatus
    note: str | None = None


class CreatedUserOut(UserOut):
    welcome_email: WelcomeEmailOut


@users_router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(
    body: CreateUserRequest, admin: AdminPrincipal, context: Context
) -> CreatedUserOut:
    """Create an account by hand; it stays pending until its first login."""
    created = await services.create_user(
        context.uow(),
        NewUser(**{**body.model_dump(), "roles": tuple(body.roles)}),
        actor=admin,
        policy=context.policy,
        hasher=context.hasher,
        smtp_status=context.smtp_status,
        now=datetime.now(UTC),
    )
    return CreatedUserOut(
        **UserOut.of(created.user).model_dump(),
        welcome_email=WelcomeEmailOut(
            status=created.welcome_email.status, note=created.welcome_email.note
        ),
    )


class UserList(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


@users_router.get("")
async def list_users(
    _admin: AdminPrincipal,
    context: Context,
    status: UserStatus | None = None,
    search: Search = None,
    q: DeprecatedSearch = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> UserList:
    """Newest first; `search` matches name, username or email (`q` is its old name)."""
    page = await services.list_users(
        context.uow(),
        status=status,
        search=search_term(search, q),
        limit=limit,
        offset=offset,
    )
    return UserList(
        items=[UserOut.of(user) for user in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@users_router.get("/{user_id}")
async def get_user(user_id: uuid.UUID, _admin: AdminPrincipal, context: Context) -> UserOut:
    return UserOut.of(await services.get_user(context.uow(), user_id))


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
    user = await services.update_user(
        context.uow(),
        user_id,
        body.model_dump(exclude_unset=True),
        actor=admin,
        now=datetime.now(UTC),
    )
    return UserOut.of(user)


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
    avatar = await services.set_avatar(
        context.uow(),
        user_id,
        data,
        actor=principal,
        processor=context.avatars,
        now=datetime.now(UTC),
    )
    return AvatarOut(
        avatar_url=f"/api/v1/users/{user_id}/avatar?v={avatar.etag[:12]}", etag=avatar.etag
    )


@users_router.delete("/{user_id}/avatar", status_code=status.HTTP_204_NO_CONTENT)
async def delete_avatar(
    user_id: uuid.UUID, principal: CurrentPrincipal, context: Context
) -> Response:
    """Back to the default picture drawn from the initials."""
    await services.reset_avatar(context.uow(), user_id, actor=principal, now=datetime.now(UTC))
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
    user, avatar = await services.avatar_of(context.uow(), user_id)
    if avatar is not None:
        content, media_type, etag = avatar.content, avatar.media_type, avatar.etag
    else:
        content = initials_svg(user.name, user.id, context.settings.avatar_size).encode()
        media_type, etag = "image/svg+xml", content_etag(content)
    headers = {**AVATAR_HEADERS, "ETag": f'"{etag}"'}
    if if_none_match is not None and f'"{etag}"' in if_none_match:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


# Errors from the service layer, as answers


def _error(code: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


def _field_problems(problems: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [{"loc": ["body", name], "msg": msg, "type": kind} for name, msg in problems.items()]


async def _invalid_fields(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, InvalidFields)
    return _error(422, _field_problems(error.problems, "value_error"))


async def _duplicate(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DuplicateField)
    problems = {name: f"{name} is already in use" for name in error.fields}
    return _error(409, _field_problems(problems, "duplicate"))


def _plain(code: int, message: str | None = None) -> Callable[..., Awaitable[JSONResponse]]:
    async def handle(_request: Request, error: Exception) -> JSONResponse:
        return _error(code, message or str(error))

    return handle


async def _avatar_rejected(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AvatarRejected)
    if isinstance(error, AvatarTooLarge):
        code = 413  # content too large
    elif error.unsupported_type:
        code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    else:
        code = 422  # a PNG, JPEG, GIF or WebP in name only
    return _error(code, f"image refused: {error}")


ERROR_HANDLERS: dict[type[Exception], Callable[..., Awaitable[JSONResponse]]] = {
    InvalidFields: _invalid_fields,
    DuplicateField: _duplicate,
    NotFound: _plain(404, "no such user"),
    NotAllowed: _plain(403),
    LastAdmin: _plain(409),
    InvalidLink: _plain(400, "this link is invalid, already used or expired"),
    AvatarRejected: _avatar_rejected,
}

routers = [auth_router, users_router]
