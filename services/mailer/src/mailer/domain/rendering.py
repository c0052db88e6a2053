"""Emails rendered from templates that escape every value, and built so that no value can
add a header (the standard library refuses line breaks in header values)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_templates = Environment(
    loader=PackageLoader("mailer", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    # The templates ship with the package: compiled once, never checked on disk again per mail.
    auto_reload=False,
)


@dataclass(frozen=True)
class InvitationEmail:
    workspace_name: str
    join_url: str
    expires_at: datetime
    inviter_name: str | None = None
    message: str | None = None
    reminder: bool = False  # the one automatic reminder: same link, shortly before expiry


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def one_line(value: str) -> str:
    return " ".join(value.split())


def render_invitation(email: InvitationEmail) -> RenderedEmail:
    """Raise ValueError for a link that is not a web link (it would become a button)."""
    if not _is_web_link(email.join_url):
        raise ValueError("join_url must be an http(s) URL")
    values = {
        "workspace_name": one_line(email.workspace_name),
        "join_url": email.join_url,
        "expires_at": email.expires_at.strftime("%B %d, %Y at %H:%M UTC"),
        "inviter_name": email.inviter_name,
        "message": email.message,
        "reminder": email.reminder,
    }
    welcome = f"Welcome to {values['workspace_name']}"
    return _rendered("invitation", f"Reminder: {welcome}" if email.reminder else welcome, values)


@dataclass(frozen=True)
class WelcomeEmail:
    name: str
    username: str
    workspace_name: str
    login_url: str
    set_password_url: str | None = None
    set_password_expires_at: datetime | None = None


def render_welcome(email: WelcomeEmail) -> RenderedEmail:
    """Raise ValueError for a link that is not a web link (it would become a button)."""
    links = [email.login_url, *([email.set_password_url] if email.set_password_url else [])]
    if not all(_is_web_link(link) for link in links):
        raise ValueError("login_url and set_password_url must be http(s) URLs")
    expires = email.set_password_expires_at
    values = {
        "workspace_name": one_line(email.workspace_name),
        "name": one_line(email.name),
        "username": one_line(email.username),
        "login_url": email.login_url,
        "set_password_url": email.set_password_url,
        "set_password_expires_at": expires.strftime("%B %d, %Y at %H:%M UTC") if expires else None,
    }
    return _rendered("welcome", f"Welcome to {values['workspace_name']}", values)


@dataclass(frozen=True)
class AcceptanceEmail:
    """To an inviter: someone joined through their invitation."""

    member_name: str
    member_email: str
    workspace_name: str
    console_url: str
    accepted_at: datetime
    inviter_name: str | None = None


def render_acceptance(email: AcceptanceEmail) -> RenderedEmail:
    """Raise ValueError for a link that is not a web link (it would become a button)."""
    if not _is_web_link(email.console_url):
        raise ValueError("console_url must be an http(s) URL")
    values = {
        "member_name": one_line(email.member_name),
        "member_email": one_line(email.member_email),
        "workspace_name": one_line(email.workspace_name),
        "inviter_name": one_line(email.inviter_name) if email.inviter_name else None,
        "console_url": email.console_url,
        "accepted_at": email.accepted_at.astimezone(UTC).strftime("%B %d, %Y at %H:%M UTC"),
    }
    subject = f"{values['member_name']} accepted your invitation to {values['workspace_name']}"
    return _rendered("acceptance", subject, values)


def _is_web_link(url: str) -> bool:
    """Links become buttons: anything but http(s) (javascript:, data:) could run or mislead."""
    return url.startswith(("https://", "http://"))


def _rendered(template: str, subject: str, values: Mapping[str, object]) -> RenderedEmail:
    """Both parts from the same values: ``template``.txt and ``template``.html."""
    return RenderedEmail(
        subject=subject,
        text=_templates.get_template(f"{template}.txt").render(values),
        html=_templates.get_template(f"{template}.html").render(values),
    )


def build_message(
    rendered: RenderedEmail, *, sender: str, recipient: str, message_id: uuid.UUID | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    _set_recipient(message, recipient)
    domain = sender.rsplit("@", 1)[-1].strip(">").strip()
    message["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _set_recipient(message: EmailMessage, recipient: str) -> None:
    """An address no SMTP server could take is the message's fault: refuse it here, once,
    rather than let the SMTP client's error look like a transient failure."""
    address = _addr_spec(recipient)
    try:
        message["To"] = recipient
        parsed = [mailbox.addr_spec for mailbox in message["To"].addresses]
    except (IndexError, HeaderParseError):  # the stdlib's parser trips on some forms
        parsed = []
    if not address or parsed != [address]:
        raise ValueError("the recipient is not one email address")


def _addr_spec(recipient: str) -> str:
    _name, address = parseaddr(recipient)
    local, at, domain = address.rpartition("@")
    return address if at and local and domain and " " not in address else ""
