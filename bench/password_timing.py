"""Timing of password hashing, measured here rather than asserted in tests.

Prints the median time of a real verify (wrong password) beside verify_dummy
(what an unknown username costs), and the longest event-loop stall while eight
hashes run at once (a 5 ms ticker).

    .venv/bin/python bench/password_timing.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable

from identity.domain.passwords import Passwords

PW = "correct horse battery staple 42"


async def timed(call: Awaitable[object]) -> float:
    start = time.perf_counter()
    await call
    return time.perf_counter() - start


async def main() -> None:
    p = Passwords(threads=1)
    try:
        stored = await p.hash(PW)
        real = [await timed(p.verify(stored, "wrong guess")) for _ in range(15)]
        dummy = [await timed(p.verify_dummy("wrong guess")) for _ in range(15)]
    finally:
        p.close()
    r, d = statistics.median(real), statistics.median(dummy)
    print(f"verify (wrong password): median {r * 1000:.1f} ms")
    print(f"verify_dummy (unknown user): median {d * 1000:.1f} ms  (ratio {d / r:.2f})")

    p = Passwords()
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
        start = time.perf_counter()
        await asyncio.gather(*(p.hash(f"{PW} {i}") for i in range(8)))
        elapsed = time.perf_counter() - start
        done.set()
        await task
    finally:
        p.close()
    print(f"8 hashes at once: {elapsed * 1000:.0f} ms; longest event-loop gap "
          f"{max(gaps) * 1000:.1f} ms (ticker every 5 ms)")


if __name__ == "__main__":
    asyncio.run(main())
