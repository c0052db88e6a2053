"""Emails rendered from templates that escape every value, and built so that no value can
add a header (the standard library refuses line breaks in header values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_templates = Environment(
    loader=PackageLoader("mailer", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class InvitationEmail:
    recipient: str
    workspace_name: str
    join_url: str
    expires_at: datetime
    inviter_name: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def one_line(value: str) -> str:
    return " ".join(value.split())


def render_invitation(email: InvitationEmail) -> RenderedEmail:
    """Raise ValueError for a link that is not a web link (it would become a button)."""
    if not email.join_url.startswith(("https://", "http://")):
        raise ValueError("join_url must be an http(s) URL")
    values = {
        "workspace_name": one_line(email.workspace_name),
        "join_url": email.join_url,
        "expires_at": email.expires_at.strftime("%B %d, %Y at %H:%M UTC"),
        "inviter_name": email.inviter_name,
        "message": email.message,
    }
    return RenderedEmail(
        subject=f"Welcome to {values['workspace_name']}",
        text=_templates.get_template("invitation.txt").render(values),
        html=_templates.get_template("invitation.html").render(values),
    )


def build_message(rendered: RenderedEmail, *, sender: str, recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = recipient
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">").strip())
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
