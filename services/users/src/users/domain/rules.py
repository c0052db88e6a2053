"""What makes a user's fields valid. Every check names its field, so an answer can list them all."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200
MAX_USERNAME_LENGTH = 64
MAX_NICKNAME_LENGTH = 120
MAX_BIO_LENGTH = 260
MAX_STATUS_TEXT_LENGTH = 120

ADMIN_ROLE = "admin"
USER_ROLE = "user"
KNOWN_ROLES = (ADMIN_ROLE, USER_ROLE)

_USERNAME = re.compile(r"^[A-Za-z0-9._-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tabs and line breaks are checked apart
# Characters that reorder the text around them: a name could show as another one.
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")

T = TypeVar("T")


class FieldProblem(ValueError):
    """One field's value breaks a rule; the message is fit to show to an admin."""


class InvalidFields(ValueError):
    """One or more fields break their rules: field name -> what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems.items()))
        self.problems = problems


class FieldChecks:
    """Runs checks and collects every problem, instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    def check(self, field: str, rule: Callable[[T], T], value: T) -> T:
        try:
            return rule(value)
        except FieldProblem as problem:
            self.problems[field] = str(problem)
            return value

    def fail(self, field: str, message: str) -> None:
        self.problems.setdefault(field, message)

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidFields(dict(self.problems))


def _nfkc(value: str) -> str:
    """Compatibility forms folded: full-width letters become their ASCII twins."""
    return unicodedata.normalize("NFKC", value)


def email_address(value: str) -> str:
    """The address as kept and shown (NFKC, domain lower-cased); compare with :func:`email_key`."""
    value = _nfkc(value).strip()
    if len(value) > MAX_EMAIL_LENGTH:
        raise FieldProblem(f"must be at most {MAX_EMAIL_LENGTH} characters")
    if _CONTROL.search(value) or "\n" in value or "\r" in value:
        raise FieldProblem("must not contain control characters")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise FieldProblem(f"not a valid email address: {error}") from None


def comparison_key(value: str) -> str:
    """How addresses, usernames and logins are compared, here and only here: NFKC, trimmed,
    lower-cased. Unique case-insensitively, so `Ada` and `ada` cannot both exist."""
    return _nfkc(value).strip().lower()


# A login (a username or an email) finds its account because all of these are the same key.
email_key = comparison_key
username_key = comparison_key
login_key = comparison_key
search_key = comparison_key  # a search term, compared with the keys (and lower-cased names)


def username(value: str) -> str:
    value = _nfkc(value).strip()
    if _BIDI_CONTROLS.search(value):
        raise FieldProblem("must not contain bidirectional control characters")
    if not value:
        raise FieldProblem("must not be empty")
    if len(value) > MAX_USERNAME_LENGTH:
        raise FieldProblem(f"must be at most {MAX_USERNAME_LENGTH} characters")
    if not _USERNAME.match(value):
        raise FieldProblem("may contain only letters, digits, dot, dash and underscore")
    return value


def display_name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise FieldProblem("must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise FieldProblem(f"must be at most {MAX_NAME_LENGTH} characters")
    if _CONTROL.search(value):
        raise FieldProblem("must not contain control characters")
    if _BIDI_CONTROLS.search(value):
        raise FieldProblem("must not contain bidirectional control characters")
    return value


def optional_text(
    limit: int, *, single_line: bool, name: bool = False
) -> Callable[[str | None], str | None]:
    """A rule for free text up to ``limit`` characters; blank becomes None. A ``name`` also
    refuses bidirectional controls."""

    def rule(value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split()) if single_line else value.strip()
        if not value:
            return None
        if len(value) > limit:
            raise FieldProblem(f"must be at most {limit} characters")
        if _CONTROL.search(value):
            raise FieldProblem("must not contain control characters")
        if name and _BIDI_CONTROLS.search(value):
            raise FieldProblem("must not contain bidirectional control characters")
        return value

    return rule


nickname = optional_text(MAX_NICKNAME_LENGTH, single_line=True, name=True)
bio = optional_text(MAX_BIO_LENGTH, single_line=False)
status_text = optional_text(MAX_STATUS_TEXT_LENGTH, single_line=True)


def roles(value: Iterable[str]) -> list[str]:
    """Known roles only, each once, in a stable order; at least one."""
    given = [role.strip().lower() for role in value]
    unknown = sorted({role for role in given if role not in KNOWN_ROLES})
    if unknown:
        raise FieldProblem(
            f"unknown role(s) {', '.join(unknown)}; known roles: {', '.join(KNOWN_ROLES)}"
        )
    if not given:
        raise FieldProblem("at least one role is needed")
    return [role for role in KNOWN_ROLES if role in given]
