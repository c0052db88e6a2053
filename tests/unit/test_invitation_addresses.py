"""Turning pasted text into addresses: separators, names, duplicates, bad input."""

from __future__ import annotations

import pytest

from invitations.domain.addresses import AddressProblem, parse_addresses, split_addresses


def emails(raw: str | list[str]) -> list[str | None]:
    return [address.email for address in parse_addresses(raw)]


@pytest.mark.parametrize(
    "raw",
    [
        "a@example.com,b@example.com,c@example.com",
        "a@example.com; b@example.com;c@example.com",
        "a@example.com\nb@example.com\r\nc@example.com",
        "a@example.com b@example.com\tc@example.com",
        " ,a@example.com,, \n\n b@example.com ;; c@example.com, ",
        ["a@example.com", " b@example.com ", "c@example.com"],
    ],
)
def test_every_separator_is_accepted(raw: str | list[str]) -> None:
    assert emails(raw) == ["a@example.com", "b@example.com", "c@example.com"]


def test_the_name_and_address_form_keeps_the_name() -> None:
    [address] = parse_addresses('"Ada Lovelace" <ada@example.com>')
    assert (address.email, address.display_name) == ("ada@example.com", "Ada Lovelace")
    assert split_addresses("Ada Lovelace <ada@example.com>, bob@example.com") == [
        "Ada Lovelace <ada@example.com>",
        "bob@example.com",
    ]


def test_duplicates_are_reported_case_insensitively_after_the_first() -> None:
    parsed = parse_addresses("ada@example.com, ADA@Example.com, Ada <ada@example.com>")
    assert [p.problem for p in parsed] == [
        None,
        AddressProblem.DUPLICATE_IN_REQUEST,
        AddressProblem.DUPLICATE_IN_REQUEST,
    ]


@pytest.mark.parametrize(
    ("entry", "reason_part"),
    [
        ("not-an-address", "@-sign"),
        ("a@", "after the @-sign"),
        ("@example.com", "before the @-sign"),
        ("a@exa mple.com", ""),
        ("a" * 330 + "@example.com", "longer than"),
    ],
)
def test_invalid_addresses_are_reported_with_a_reason(entry: str, reason_part: str) -> None:
    results = parse_addresses([entry])
    assert all(r.problem is AddressProblem.INVALID and r.reason for r in results)
    assert any(reason_part in (r.reason or "") for r in results)


def test_a_unicode_domain_is_accepted() -> None:
    [address] = parse_addresses("josé@bücher.example")
    assert address.problem is None
    assert address.email == "josé@bücher.example"


@pytest.mark.parametrize(
    "attempt",
    [
        "a@example.com\r\nBcc: victim@example.com",
        "a@example.com%0d%0aBcc:x@y.z",
        "x\x00@example.com",
    ],
)
def test_header_injection_attempts_never_yield_an_address_with_a_line_break(attempt: str) -> None:
    for address in parse_addresses(attempt):
        assert address.email is None or not any(c in address.email for c in "\r\n\x00")
    assert parse_addresses([attempt])[0].problem is AddressProblem.INVALID
