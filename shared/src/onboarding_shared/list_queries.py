"""The query parameters every list endpoint takes, spelled and bounded the same way:
``search`` (``q`` is its deprecated alias), ``limit`` and ``offset``."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, HTTPException, Query, status
from pydantic import AfterValidator, BaseModel

MAX_SEARCH_LENGTH = 320  # the longest email address
MAX_LIMIT = 200
# Far past any real list, and far inside every database's integer: a larger offset is a 422,
# never an overflow in the driver.
MAX_OFFSET = 10_000_000


def _plain_text(value: str | None) -> str | None:
    # A NUL cuts a SQLite LIKE pattern short (so it matched everything); no control character
    # belongs in a search.
    if value is not None and any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


Search = Annotated[
    str | None,
    AfterValidator(_plain_text),
    Query(max_length=MAX_SEARCH_LENGTH, description="Part of the name, username or address."),
]
DeprecatedSearch = Annotated[
    str | None,
    AfterValidator(_plain_text),
    Query(max_length=MAX_SEARCH_LENGTH, deprecated=True, description="Old name of `search`."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def search_term(search: str | None, q: str | None) -> str | None:
    """The search asked for, by its name or by the deprecated alias (not both)."""
    if search is not None and q is not None and search != q:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["query", "q"],
                    "msg": "give search (q is its deprecated alias), not both",
                    "type": "value_error",
                }
            ],
        )
    return search if search is not None else q


@dataclass(frozen=True)
class ListWindow:
    """The part of a list asked for: what to search for (by either name), and the page."""

    search: str | None
    limit: int
    offset: int


def list_window(
    search: Search = None, q: DeprecatedSearch = None, limit: Limit = 50, offset: Offset = 0
) -> ListWindow:
    return ListWindow(search_term(search, q), limit, offset)


# A route's `window: ListParameters` takes search, q, limit and offset from the query string.
ListParameters = Annotated[ListWindow, Depends(list_window)]

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, and where it stands in the whole. Subclass it per item type, so that
    the OpenAPI schema has a name of its own (``class UserList(Page[UserOut])``)."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
