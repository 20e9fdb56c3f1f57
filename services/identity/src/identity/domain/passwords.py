"""Password hashing with argon2id, off the event loop.

Parameters default to OWASP's minimum for argon2id (m=19456 KiB, t=2, p=1), not
argon2-cffi's RFC 9106 low-memory profile (m=64 MiB, t=3, p=4): on the 2-core
build machines that profile costs several times the CPU and memory per sign-in,
and with p=4 one sign-in would occupy both cores, so concurrent sign-ins queue
behind each other. OWASP's set keeps ~25 ms per hash on one core; raise the
parameters through settings and stored hashes are upgraded at the next sign-in
(``needs_rehash``).

argon2-cffi releases the GIL while hashing, so a small thread pool runs hashes
in parallel while the event loop keeps answering other requests.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_MEMORY_KIB = 19_456
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1

_T = TypeVar("_T")


def _encode(password: str) -> bytes:
    """NFKC-normalised UTF-8, as NIST SP 800-63B asks before hashing."""
    return unicodedata.normalize("NFKC", password).encode("utf-8")


class Passwords:
    """argon2id hashes computed in a bounded thread pool.

    Parameters below OWASP's minimum are refused unless ``allow_weak`` is set
    (tests only).
    """

    def __init__(
        self,
        memory_cost: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
        *,
        threads: int = 2,
        allow_weak: bool = False,
    ) -> None:
        if not allow_weak and (memory_cost < OWASP_MEMORY_KIB or time_cost < OWASP_TIME_COST):
            raise ValueError(
                f"argon2id needs memory_cost >= {OWASP_MEMORY_KIB} KiB"
                f" and time_cost >= {OWASP_TIME_COST}"
            )
        if parallelism < 1 or threads < 1:
            raise ValueError("parallelism and threads must be at least 1")
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        # A hash of a random secret at the current parameters, for verify_dummy.
        self._dummy_hash = self._hasher.hash(secrets.token_bytes(32))

    def __repr__(self) -> str:
        p = self._hasher
        return (
            f"Passwords(memory_cost={p.memory_cost}, time_cost={p.time_cost},"
            f" parallelism={p.parallelism})"
        )

    async def _run(self, func: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, func, *args)

    async def hash(self, password: str) -> str:
        """A fresh argon2id hash (random salt) in PHC string form."""
        return await self._run(self._hasher.hash, _encode(password))

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, _encode(password))
        except (VerificationError, InvalidHashError, UnicodeError):
            return False

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; False on mismatch or an unreadable hash."""
        return await self._run(self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend what a real verify spends, for unknown usernames (no timing oracle)."""
        await self._run(self._verify, self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters (or cannot be read)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        """Stop the thread pool, letting running hashes finish."""
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class LockoutPolicy:
    """Slow down repeated failed sign-ins, then lock the account for a while."""

    max_failures: int = 5
    lock_minutes: int = 15
    base_delay_seconds: float = 0.25
    max_delay_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.lock_minutes < 1:
            raise ValueError("max_failures and lock_minutes must be at least 1")
        if not 0 <= self.base_delay_seconds <= self.max_delay_seconds:
            raise ValueError("delays must satisfy 0 <= base <= max")

    def delay_for(self, failures: int) -> float:
        """Seconds to wait before answering after ``failures`` consecutive failures."""
        if failures <= 0:
            return 0.0
        exponent = min(failures - 1, 32)
        return float(min(self.max_delay_seconds, self.base_delay_seconds * 2**exponent))

    def locked_until(self, failures: int, now: datetime) -> datetime | None:
        """When the lock ends, once ``failures`` reaches ``max_failures``; else None."""
        if failures >= self.max_failures:
            return now + timedelta(minutes=self.lock_minutes)
        return None
