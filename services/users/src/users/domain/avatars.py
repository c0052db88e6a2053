"""Profile pictures: what is accepted, what is stored, and the default drawn from initials."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from html import escape

# Recognised by their first bytes, never by the name or type the client claims.
ACCEPTED_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
)
ACCEPTED_NAMES = "PNG, JPEG, GIF or WebP"

_PALETTE = ("#1d74f5", "#2de0a5", "#f5455c", "#ffd21f", "#9c27b0", "#f38c39", "#158d65")


class AvatarRejected(Exception):
    """The upload is not an acceptable image: a PNG, JPEG, GIF or WebP in name only, or too
    many pixels."""

    unsupported_type = False

    def __init__(self, reason: str) -> None:
        super().__init__(f"image refused: {reason}")


class AvatarTypeUnsupported(AvatarRejected):
    """Not one of the accepted formats at all (by its first bytes)."""

    unsupported_type = True


class AvatarTooLarge(AvatarRejected):
    """More bytes than the limit."""


def sniff_format(data: bytes) -> str | None:
    """PNG, JPEG, GIF or WEBP by signature, or None."""
    for signature, offset, name in ACCEPTED_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if name == "WEBP" and not data.startswith(b"RIFF"):
                continue
            return name
    return None


@dataclass(frozen=True)
class Avatar:
    user_id: uuid.UUID
    content: bytes
    media_type: str
    etag: str
    updated_at: datetime

    @classmethod
    def of(cls, user_id: uuid.UUID, content: bytes, media_type: str, now: datetime) -> Avatar:
        return cls(user_id, content, media_type, content_etag(content), now)


def content_etag(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:32]


def initials(name: str) -> str:
    """Up to two letters or digits from the first two words; "?" when there are none."""
    words = ["".join(ch for ch in word if ch.isalnum()) for word in name.split()]
    letters = [word[0] for word in words if word][:2]
    return "".join(letters).upper() or "?"


def initials_svg(name: str, seed: uuid.UUID, size: int = 256) -> str:
    """The default picture. The text is escaped, and the caller serves it with a strict policy."""
    color = _PALETTE[int(hashlib.sha256(seed.bytes).hexdigest(), 16) % len(_PALETTE)]
    text = escape(initials(name))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}"><rect width="100%" height="100%" fill="{color}"/>'
        f'<text x="50%" y="50%" dy=".35em" text-anchor="middle" fill="#ffffff" '
        f'font-family="Helvetica,Arial,sans-serif" font-size="{size * 0.42:g}">{text}</text>'
        "</svg>"
    )
