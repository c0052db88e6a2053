"""Turning what an admin pasted into a list of addresses to invite."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import unquote
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from invitations.domain.model import email_key, normalised_email

MAX_ADDRESS_LENGTH = 320
_SEPARATORS = re.compile(r"[,;\r\n]+")
_LINES = re.compile(r"[\r\n]+")
_NAMED = re.compile(r"^(?P<name>[^<>]*)<(?P<address>[^<>]*)>$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters that reorder the text around them: a name could show as something else.
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class AddressProblem(StrEnum):
    INVALID = "invalid"
    DUPLICATE_IN_REQUEST = "duplicate_in_request"


@dataclass(frozen=True)
class ParsedAddress:
    given: str
    email: str | None = None  # normalised, when valid
    display_name: str | None = None
    problem: AddressProblem | None = None
    reason: str | None = None

    @property
    def key(self) -> str | None:
        """Addresses are compared case-insensitively, after NFKC normalisation."""
        return email_key(self.email) if self.email else None


def split_addresses(raw: str | list[str]) -> list[str]:
    """Split on commas, semicolons, line breaks and whitespace, keeping `Name <address>` whole.
    A comma or semicolon inside a quoted name (`"Hopper, Grace" <grace@example.com>`) is part
    of the name, as in RFC 5322; a line break always separates.

    A list is taken as already split: each item is one entry, whatever it contains.
    """
    if isinstance(raw, list):
        return [item.strip() for item in raw if item.strip()]
    entries: list[str] = []
    chunks = [chunk for line in _LINES.split(raw) for chunk in _split_outside_quotes(line)]
    for chunk in (c.strip() for c in chunks):
        if not chunk:
            continue
        if _NAMED.match(chunk):
            entries.append(chunk)
        else:
            entries.extend(chunk.split())
    return entries


def _split_outside_quotes(line: str) -> list[str]:
    """Split one line on commas and semicolons that are not inside a quoted string."""
    chunks: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in line:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch in ",;":
            chunks.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quoted:  # a quote never closed quotes nothing: split as if it were not there
        return _SEPARATORS.split(line)
    chunks.append("".join(current))
    return chunks


def parse_addresses(raw: str | list[str]) -> list[ParsedAddress]:
    seen: set[str] = set()
    parsed: list[ParsedAddress] = []
    for entry in split_addresses(raw):
        address = parse_address(entry)
        if address.key is not None and address.key in seen:
            address = ParsedAddress(
                given=entry,
                email=address.email,
                problem=AddressProblem.DUPLICATE_IN_REQUEST,
                reason="appears earlier in this request",
            )
        elif address.key is not None:
            seen.add(address.key)
        parsed.append(address)
    return parsed


def parse_address(entry: str) -> ParsedAddress:
    named = _NAMED.match(entry)
    name = unquote(named.group("name").strip()).strip() or None if named else None
    candidate = normalised_email(named.group("address").strip() if named else entry)
    if _CONTROL.search(entry):
        return _invalid(entry, "contains control characters")
    if _BIDI_CONTROLS.search(entry):
        return _invalid(entry, "contains bidirectional control characters")
    if len(candidate) > MAX_ADDRESS_LENGTH:
        return _invalid(entry, f"longer than {MAX_ADDRESS_LENGTH} characters")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        return _invalid(entry, str(error))
    return ParsedAddress(given=entry, email=checked.normalized, display_name=name)


def _invalid(entry: str, reason: str) -> ParsedAddress:
    return ParsedAddress(given=entry, problem=AddressProblem.INVALID, reason=reason)
