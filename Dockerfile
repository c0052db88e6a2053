# syntax=docker/dockerfile:1
# One image for the four services; the command picks one:
#   onboarding-users|onboarding-invitations|onboarding-mailer|onboarding-auth-listener  serve|migrate
# plus the operators' tool onboarding-parked. Or build one service's image with --target users|...
# Nothing is fetched outside a lock: uv by hash (deploy/image/uv-requirements.txt), every Python
# package, our build backend included, from uv.lock (uv sync --frozen).

# An exact tag. For production, pin the digest too, so a re-pushed tag cannot change the image:
#   crane digest python:3.11.14-slim-bookworm
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
# (the digest of the multi-platform index, so every platform resolves through it).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Same uv as the Makefile (UV_VERSION), accepted only if its sha256 is one PyPI published;
# wheels only: building uv from its sdist would fetch a Rust toolchain outside any lock.
COPY deploy/image/uv-requirements.txt /tmp/uv-requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes --only-binary :all: \
    -r /tmp/uv-requirements.txt
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Third-party dependencies first: this layer changes only when the lock file does. The `build`
# group is our packages' build backend (hatchling), locked in uv.lock like the rest.
COPY uv.lock pyproject.toml ./
COPY shared/pyproject.toml shared/
COPY services/users/pyproject.toml services/users/
COPY services/invitations/pyproject.toml services/invitations/
COPY services/mailer/pyproject.toml services/mailer/
COPY services/auth-listener/pyproject.toml services/auth-listener/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --group build --all-packages --no-install-workspace
# Then our five packages, installed as wheels (not editable), so /src is not needed at run time.
# --no-build-isolation: built with the locked hatchling installed above, not one uv would fetch
# into an isolated build environment; --offline proves nothing else is downloaded. The second
# sync, without the group, removes hatchling and its dependencies from the runtime environment.
COPY shared shared
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --offline --no-dev --group build --all-packages --no-editable \
        --no-build-isolation \
    && uv sync --frozen --offline --no-dev --all-packages --no-editable --no-build-isolation

FROM ${PYTHON_IMAGE} AS runtime
# No installer at run time: the base image ships pip (and, for 3.11, setuptools and wheel) in the
# system site-packages, plus their wheels for ensurepip; the services need none of them, and
# without them nothing can be pip-installed into a running container.
RUN python -m pip uninstall --yes --disable-pip-version-check setuptools wheel pip \
    && rm -rf /usr/local/lib/python3.*/ensurepip/_bundled \
    && groupadd --system --gid 10001 onboarding \
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
# Liveness for Docker and compose (Kubernetes ignores it and uses the Deployments' probes): GET
# /health on HTTP_PORT, which every service target sets; with the default target, set HTTP_PORT.
# Python's urllib, as the slim image has no curl; an error status or a timeout exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('HTTP_PORT') or sys.exit('HTTP_PORT is not set'); urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4)"]
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
