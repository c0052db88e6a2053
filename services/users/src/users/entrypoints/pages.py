"""The page a welcome email's set-password link opens. The token stays in the URL's fragment,
which browsers never send to a server; the page's script posts it to the API."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

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
