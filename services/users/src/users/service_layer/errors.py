"""Refusals of the users service's use cases. A refusal's message is what an API client reads
(entrypoints.http answers it as the detail), so it never names more than the client sent."""

from __future__ import annotations

from users.domain.invitations import LinkProblem


class NotFound(Exception):
    """No account with this id."""

    def __init__(self) -> None:
        super().__init__("no such user")


class InvalidLink(Exception):
    """The set-password link is unknown, used, expired, or its account deactivated."""

    def __init__(self) -> None:
        super().__init__("this link is invalid, already used or expired")


class LoginRefused(Exception):
    """Wrong login or password: deliberately the same for both."""

    def __init__(self) -> None:
        super().__init__("invalid login or password")


class AccountDeactivated(Exception):
    """The password was right, but the account may not log in."""

    def __init__(self) -> None:
        super().__init__("this account is deactivated")


class LoginThrottled(Exception):
    """Too many failed logins with this login, or from this client address."""

    message = "too many failed logins; try again later"

    def __init__(self, retry_after: int) -> None:
        # The wait is answered in Retry-After, not in the message.
        super().__init__(self.message)
        self.retry_after = retry_after


class PasswordLinksThrottled(LoginThrottled):
    """Too many unknown set-password links from this client address."""

    message = "too many invalid links; try again later"


class NoAdminConfigured(Exception):
    """No admin exists and none can be created from the settings."""


class JoinRefused(Exception):
    """The join link is unknown, used, expired or revoked, or gives a role nobody knows here."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(f"join link refused: {problem}")
        self.problem = problem


class JoinThrottled(Exception):
    """Too many unknown join links from this client address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many unknown join links; retry in {retry_after}s")
        self.retry_after = retry_after


class LinkJoinsThrottled(Exception):
    """Too many accounts created through invite links from this client address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many accounts through invite links; retry in {retry_after}s")
        self.retry_after = retry_after
