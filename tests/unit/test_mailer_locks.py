"""KeyedLocks: one holder per key at a time, other keys free, nothing kept once released."""

from __future__ import annotations

import asyncio

import pytest

from mailer.adapters.locks import KeyedLocks


async def test_one_holder_per_key_and_other_keys_stay_free() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    first_holds = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with locks.hold("a"):
            first_holds.set()
            await release_first.wait()
            order.append("first done")

    async def second() -> None:
        async with locks.hold("a"):
            order.append("second in")

    first_task = asyncio.create_task(first())
    await first_holds.wait()
    second_task = asyncio.create_task(second())
    async with locks.hold("b"):  # another key: not held up
        order.append("b in")
    release_first.set()
    await asyncio.gather(first_task, second_task)

    assert order == ["b in", "first done", "second in"]
    assert len(locks) == 0


async def test_a_lock_is_released_when_its_holder_fails() -> None:
    locks = KeyedLocks()

    async def fails() -> None:
        async with locks.hold("a"):
            raise RuntimeError("the send failed")

    with pytest.raises(RuntimeError):
        await fails()
    async with asyncio.timeout(1), locks.hold("a"):
        pass
    assert len(locks) == 0
