"""argon2id hashing off the event loop: round trip, bad input, rehash, loop stays free."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest

from identity.passwords import OWASP_MEMORY_KIB, OWASP_TIME_COST, Passwords

PW = "correct horse battery staple"


@pytest.fixture
def fast() -> Iterator[Passwords]:
    p = Passwords(memory_cost=1024, time_cost=1, parallelism=1, allow_weak=True)
    yield p
    p.close()


async def test_round_trip(fast: Passwords) -> None:
    stored = await fast.hash(PW)
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert PW not in stored
    assert await fast.verify(stored, PW) is True
    assert await fast.hash(PW) != stored  # random salt


async def test_wrong_password_is_false(fast: Passwords) -> None:
    stored = await fast.hash(PW)
    assert await fast.verify(stored, PW + " ") is False
    assert await fast.verify(stored, PW.upper()) is False
    assert await fast.verify(stored, "") is False


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=1024,t=1,p=1$",
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$AAAA",
        "$2b$12$abcdefghijklmnopqrstuu1234567890123456789012345678901",
    ],
)
async def test_garbage_hash_is_false(fast: Passwords, garbage: str) -> None:
    assert await fast.verify(garbage, PW) is False
    assert fast.needs_rehash(garbage) is True


async def test_unencodable_password_is_false(fast: Passwords) -> None:
    stored = await fast.hash(PW)
    assert await fast.verify(stored, "lone \ud800 surrogate") is False


async def test_passwords_are_nfkc_normalised(fast: Passwords) -> None:
    stored = await fast.hash("café au lait please")  # precomposed é
    assert await fast.verify(stored, "cafe\u0301 au lait please") is True


async def test_needs_rehash_when_parameters_rise(fast: Passwords) -> None:
    stored = await fast.hash(PW)
    assert fast.needs_rehash(stored) is False
    stronger = Passwords(memory_cost=1024, time_cost=2, parallelism=1, allow_weak=True)
    try:
        assert stronger.needs_rehash(stored) is True
        assert await stronger.verify(stored, PW) is True  # old hashes still verify
        assert stronger.needs_rehash(await stronger.hash(PW)) is False
    finally:
        stronger.close()


async def test_verify_dummy_returns_nothing(fast: Passwords) -> None:
    await fast.verify_dummy(PW)  # returns nothing, raises nothing
    await fast.verify_dummy("")


async def test_verify_dummy_costs_what_a_real_verify_costs() -> None:
    p = Passwords(threads=1)
    try:
        stored = await p.hash(PW)

        async def timed(call: Awaitable[object]) -> float:
            start = time.perf_counter()
            await call
            return time.perf_counter() - start

        real = statistics.median([await timed(p.verify(stored, "wrong guess")) for _ in range(7)])
        dummy = statistics.median([await timed(p.verify_dummy("wrong guess")) for _ in range(7)])
        assert 0.5 < dummy / real < 2.0
    finally:
        p.close()


def test_defaults_are_owasp_argon2id() -> None:
    p = Passwords()
    try:
        assert "memory_cost=19456, time_cost=2, parallelism=1" in repr(p)
    finally:
        p.close()
    assert (OWASP_MEMORY_KIB, OWASP_TIME_COST) == (19_456, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory_cost": 19_455},
        {"time_cost": 1},
        {"parallelism": 0},
        {"threads": 0},
    ],
)
def test_refuses_weak_or_nonsense_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Passwords(**kwargs)


async def test_event_loop_keeps_running_while_hashing() -> None:
    """Eight real-parameter hashes at once; a 5 ms ticker never waits 50 ms."""
    p = Passwords()  # the real defaults: each hash takes tens of milliseconds
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    try:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        start = time.perf_counter()
        hashes = await asyncio.gather(*(p.hash(f"{PW} {i}") for i in range(8)))
        elapsed = time.perf_counter() - start
        done.set()
        await task
    finally:
        p.close()
    assert len(set(hashes)) == 8
    assert elapsed > 0.05  # the hashing took long enough for the check to mean something
    assert len(gaps) >= elapsed / 0.05
    assert max(gaps) < 0.05, f"event loop stalled {max(gaps) * 1000:.0f} ms"
