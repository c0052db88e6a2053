"""Waiting on a condition instead of sleeping a guessed time. No broker or database here, so
unit tests may use it without importing the integration support."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, or fail after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
