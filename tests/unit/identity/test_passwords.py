"""argon2id hashing off the event loop: round trip, bad input, rehash, loop stays free."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from identity.domain.passwords import OWASP_MEMORY_KIB, OWASP_TIME_COST, Passwords

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
    """Whatever the password (even one that cannot be encoded), the caller learns
    nothing: no answer and no exception."""
    for password in (PW, "", "x" * 4096, "\ud800 a lone surrogate"):
        assert await fast.verify_dummy(password) is None


async def test_verify_dummy_runs_a_real_verify_at_the_current_parameters() -> None:
    """An unknown username costs what a wrong password costs because it is the same
    work: one argon2id verify, in the hashing pool, against a hash made with the
    service's own parameters. (The time itself is measured in bench/identity_signin.py.)"""
    p = Passwords(threads=1)
    calls: list[tuple[str, str, int]] = []
    real = p._verify

    def spy(password_hash: str, password: str) -> bool:
        calls.append((password_hash, password, threading.get_ident()))
        return real(password_hash, password)

    p._verify = spy  # type: ignore[method-assign]
    try:
        stored = await p.hash(PW)
        assert await p.verify(stored, "wrong guess") is False
        await p.verify_dummy("wrong guess")
    finally:
        p.close()
    (real_hash, _, real_thread), (dummy_hash, dummy_pw, dummy_thread) = calls
    assert dummy_pw == "wrong guess"
    params = lambda h: h.split("$")[1:4]  # noqa: E731 - variant, version, m/t/p
    assert params(dummy_hash) == params(real_hash) == ["argon2id", "v=19", "m=19456,t=2,p=1"]
    assert dummy_thread == real_thread != threading.get_ident()  # off the event loop


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


async def test_hashing_runs_off_the_event_loop() -> None:
    """Hashes run in the pool's threads, never on the loop's: while eight hash, the
    loop goes on serving (a task scheduled meanwhile finishes before they do)."""
    p = Passwords()  # the real defaults
    threads: list[int] = []

    class Spy:
        def __init__(self, hasher: Any) -> None:
            self.hasher = hasher

        def hash(self, secret: bytes) -> str:
            threads.append(threading.get_ident())
            return str(self.hasher.hash(secret))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.hasher, name)

    p._hasher = Spy(p._hasher)  # type: ignore[assignment]
    try:
        hashing = asyncio.gather(*(p.hash(f"{PW} {i}") for i in range(8)))
        served = asyncio.ensure_future(asyncio.sleep(0, result="served"))
        first = await asyncio.wait({hashing, served}, return_when=asyncio.FIRST_COMPLETED)
        assert served in first[0] and not hashing.done()
        hashes = await hashing
    finally:
        p.close()
    assert len(set(hashes)) == 8
    assert len(threads) == 8 and threading.get_ident() not in threads
