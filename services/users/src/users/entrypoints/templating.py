"""Rendering the pages people see, with the headers every one of them needs. Assets are served
by this service (no CDN) under /static, with a version in their address so caches never hold a
stale script."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
_templates = Jinja2Templates(directory=HERE / "templates")
ASSET_VERSION = hashlib.sha256(
    b"".join(path.read_bytes() for path in sorted(STATIC.iterdir()) if path.is_file())
).hexdigest()[:12]

_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Pages whose address carries a token (join, set-password) send no referrer at all; the others
# keep it to our own origin, which also lets browsers send Origin with their forms (a
# no-referrer page's form posts "Origin: null", and the sign-in form is checked against it).
SECRET_ADDRESS = {"Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


def render(
    request: Request,
    template: str,
    workspace_name: str,
    code: int = status.HTTP_200_OK,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    return _templates.TemplateResponse(
        request,
        template,
        {
            "workspace_name": workspace_name,
            "asset_version": ASSET_VERSION,
            "referrer_policy": (headers or PAGE_HEADERS).get("Referrer-Policy", "same-origin"),
            **values,
        },
        status_code=code,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
