# syntax=docker/dockerfile:1
# One image for the four services; the command picks one:
#   onboarding-users|onboarding-invitations|onboarding-mailer|onboarding-auth-listener  serve|migrate
# plus the operators' tool onboarding-parked. Or build one service's image with --target users|...
# Installed from uv.lock only (uv sync --frozen): the image holds exactly the locked versions.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Same uv as the Makefile (UV_VERSION), from PyPI.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Third-party dependencies first: this layer changes only when the lock file does.
COPY uv.lock pyproject.toml ./
COPY shared/pyproject.toml shared/
COPY services/users/pyproject.toml services/users/
COPY services/invitations/pyproject.toml services/invitations/
COPY services/mailer/pyproject.toml services/mailer/
COPY services/auth-listener/pyproject.toml services/auth-listener/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace
# Then our five packages, installed as wheels (not editable), so /src is not needed at run time.
COPY shared shared
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 onboarding \
    && useradd --system --uid 10001 --gid onboarding --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin onboarding
# Owned by root and read-only for the service user: the root filesystem can be mounted read-only.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HTTP_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
EXPOSE 8001 8002 8003 8004
CMD ["python", "-c", "print('Choose a command: onboarding-users, onboarding-invitations, onboarding-mailer or onboarding-auth-listener with serve or migrate; onboarding-parked --help.')"]

FROM runtime AS users
ENV HTTP_PORT=8001
CMD ["onboarding-users", "serve"]

FROM runtime AS invitations
ENV HTTP_PORT=8002
CMD ["onboarding-invitations", "serve"]

FROM runtime AS mailer
ENV HTTP_PORT=8003
CMD ["onboarding-mailer", "serve"]

FROM runtime AS auth-listener
ENV HTTP_PORT=8004
CMD ["onboarding-auth-listener", "serve"]

# The default target: every command, none chosen.
FROM runtime
