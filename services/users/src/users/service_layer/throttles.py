"""Counting failures (wrong passwords, unknown links) against keys, and refusing while a key is
locked out. Logging in and joining share these, so both kinds of guessing are slowed alike."""

from __future__ import annotations

from datetime import datetime

from users.domain.throttling import LoginThrottle, ThrottlePolicy
from users.service_layer.errors import LoginThrottled
from users.service_layer.unit_of_work import UsersUnitOfWork

# A throttle's key and the failures it allows in a window.
Limit = tuple[str, int]


async def is_locked(uow: UsersUnitOfWork, key: str, now: datetime) -> bool:
    throttle = await uow.throttles.get(key)
    return throttle is not None and throttle.retry_after(now) is not None


async def refuse_if_throttled(uow: UsersUnitOfWork, keys: list[Limit], now: datetime) -> None:
    """LoginThrottled with the longest wait of the keys locked out."""
    waits = []
    for key, _limit in keys:
        throttle = await uow.throttles.get(key)
        if throttle is not None and (wait := throttle.retry_after(now)) is not None:
            waits.append(wait)
    if waits:
        raise LoginThrottled(max(waits))


async def record_failure(
    uow: UsersUnitOfWork, keys: list[Limit], policy: ThrottlePolicy, now: datetime
) -> None:
    async with uow:
        for key, limit in sorted(keys):  # every login takes the locks in the same order
            throttle = await uow.throttles.lock_or_create(LoginThrottle.fresh(key, now))
            throttle.record_failure(now, limit=limit, policy=policy)
        await uow.commit()


async def forget_failures(uow: UsersUnitOfWork, key: str, now: datetime) -> None:
    """Only the login's and the account's counts: a success must not wipe an address guessing
    other accounts."""
    throttle = await uow.throttles.get(key)
    if throttle is not None and throttle.failures:
        throttle.reset(now)
