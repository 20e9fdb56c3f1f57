"""Timing of password hashing and of refused sign-ins, measured here rather than
asserted in tests (the tests check that the same work runs: one argon2 verify,
against the dummy hash for an unknown name, and the same lock-out wait).

Prints the median time of a real verify (wrong password) beside verify_dummy
(what an unknown username costs), and the longest event-loop stall while eight
hashes run at once (a 5 ms ticker). Then, against a throwaway PostgreSQL, the
sign-in use case at the service's own lock-out rule: the median time of a
wrong password, an unknown name, and the right password on a locked account
(each a first failure), and the waits of an unknown name tried again and again.

    .venv/bin/python bench/password_timing.py [--tries 7] [--no-signin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import PASSWORD, bench_stack, identity_env
from identity.domain.passwords import Passwords

PW = "correct horse battery staple 42"


async def timed(call: Awaitable[object]) -> float:
    start = time.perf_counter()
    await call
    return time.perf_counter() - start


async def hashing() -> None:
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


async def signins(tries: int) -> None:
    from identity.app import SPEC
    from identity.deps import Deps
    from identity.domain.accounts import InvalidCredentials
    from identity.service.accounts import create_staff, sign_in
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool
    from shared.servicekit.runtime import migrate_database

    settings = IdentitySettings()
    dsn = settings.database_url.get_secret_value()
    await migrate_database(SPEC, dsn)
    pool = await create_pool(dsn)
    ids = Deps.from_settings(settings)
    try:
        await create_staff(pool, ids, username="bench.staff", first_name="Pat",
                           last_name="Jones", email=None, roles=["staff"], password=PASSWORD)

        async def refused(username: str, password: str) -> float:
            start = time.perf_counter()
            try:
                await sign_in(pool, ids, username, password)
            except InvalidCredentials:
                return time.perf_counter() - start
            raise AssertionError("the sign-in was not refused")

        reset = "UPDATE staff SET failed_signins = 0, locked_until = NULL"
        wrong, unknown, locked = [], [], []
        for i in range(tries):
            await pool.execute(reset)
            wrong.append(await refused("bench.staff", "wrong guess"))
            unknown.append(await refused(f"nobody{i}", "wrong guess"))
            await pool.execute(reset)
            await pool.execute("UPDATE staff SET locked_until = now() + interval '1 hour'")
            locked.append(await refused("bench.staff", PASSWORD))
        again = [await refused("ghost", "wrong guess") for _ in range(4)]
    finally:
        await pool.close()
        ids.passwords.close()
    w = statistics.median(wrong)
    print(f"sign-in refused, first failure (median of {tries}; lock-out wait "
          f"{ids.lockout.delay_for(1) * 1000:.0f} ms included):")
    print(f"  wrong password          {w * 1000:7.1f} ms")
    print(f"  unknown name            {statistics.median(unknown) * 1000:7.1f} ms"
          f"  (ratio {statistics.median(unknown) / w:.2f})")
    print(f"  right password, locked  {statistics.median(locked) * 1000:7.1f} ms"
          f"  (ratio {statistics.median(locked) / w:.2f})")
    print("  one unknown name tried 4 times: "
          + ", ".join(f"{t * 1000:.0f}" for t in again) + " ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=7)
    parser.add_argument("--no-signin", action="store_true", help="only the hashing part")
    args = parser.parse_args()
    asyncio.run(hashing())
    if args.no_signin:
        return
    with bench_stack() as stack:
        os.environ.update(identity_env(stack.pg.dsn(), stack.broker.bootstrap))
        asyncio.run(signins(args.tries))


if __name__ == "__main__":
    main()
