"""Sign-in: one answer for unknown names and wrong passwords, lock-out, refresh
token rotation and reuse, temporary password expiry, argon2 parameter upgrade."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from identity.app import create_app
from identity.deps import Deps
from identity.domain.accounts import LockoutPolicy
from identity.settings import IdentitySettings
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_journey import NEW_PASSWORD, STAFF_PASSWORD, make_staff

WRONG = "not the password at all, surely"


@asynccontextmanager
async def running_identity(
    settings: IdentitySettings | None = None,
) -> AsyncIterator[tuple[IdentityApp, FastAPI]]:
    """The service in-process, like the ``identity`` fixture, with the app at hand."""
    s = settings or IdentitySettings()
    app = create_app(s)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            yield IdentityApp(client, s), app


@pytest_asyncio.fixture
async def quick(identity_env: dict[str, str]) -> AsyncIterator[IdentityApp]:
    """The service with the production lock-out rule but millisecond slow-downs."""
    async with running_identity() as (ida, app):
        app.state.runtime.deps.lockout = LockoutPolicy(
            max_failures=5, lock_minutes=15, base_delay_seconds=0.001, max_delay_seconds=0.002)
        yield ida


QUICK_LOCKOUT = LockoutPolicy(base_delay_seconds=0.001, max_delay_seconds=0.002)


@dataclass(frozen=True)
class RecordingLockout(LockoutPolicy):
    """The lock-out rule, noting every wait it hands out (millisecond waits)."""

    waits: list[float] = field(default_factory=list)

    def delay_for(self, failures: int) -> float:
        delay = super().delay_for(failures)
        self.waits.append(delay)
        return delay


@dataclass
class SignInSpy:
    """What a sign-in did: each argon2 verify (the hash checked and its result) and
    each wait. Timing is measured in bench/password_timing.py, not here."""

    deps: Deps
    lockout: RecordingLockout
    verified: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def dummy_hash(self) -> str:
        return str(self.deps.passwords._dummy_hash)

    def clear(self) -> None:
        self.verified.clear()
        self.lockout.waits.clear()


def _params(phc: str) -> str:
    """An argon2 PHC string's algorithm, version and cost: ``argon2id$v=19$m=..,t=..,p=..``."""
    return "$".join(phc.split("$")[1:4])


@pytest_asyncio.fixture
async def spied(identity_env: dict[str, str]) -> AsyncIterator[tuple[IdentityApp, SignInSpy]]:
    """The service with a spy on the password check (the real argon2 still runs)
    and on the lock-out waits."""
    async with running_identity() as (ida, app):
        deps: Deps = app.state.runtime.deps
        deps.lockout = RecordingLockout(
            base_delay_seconds=QUICK_LOCKOUT.base_delay_seconds,
            max_delay_seconds=QUICK_LOCKOUT.max_delay_seconds)
        spy = SignInSpy(deps, deps.lockout)
        real_verify = deps.passwords._verify

        def verify(password_hash: str, password: str) -> bool:
            ok = real_verify(password_hash, password)
            spy.verified.append((password_hash, ok))
            return ok

        deps.passwords._verify = verify  # type: ignore[method-assign]
        yield ida, spy


def without_request_id(r: httpx.Response) -> dict[str, Any]:
    body = dict(r.json())
    body.pop("request_id", None)
    return body


async def new_customer(ida: IdentityApp, staff_token: str, **extra: Any) -> dict[str, Any]:
    r = await ida.client.post("/v1/customers", headers=bearer(staff_token), json={
        "first_name": "Tess", "last_name": "Moreau", "date_of_birth": "1979-11-30", **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_unknown_username_and_wrong_password_look_the_same(
    spied: tuple[IdentityApp, SignInSpy], pool: asyncpg.Pool
) -> None:
    identity, spy = spied
    await make_staff()
    stored = await pool.fetchval("SELECT password_hash FROM staff")
    spy.clear()
    wrong = await identity.sign_in("rcaseworker", WRONG)
    wrong_path = (list(spy.verified), list(spy.lockout.waits))
    spy.clear()
    unknown = await identity.sign_in("nobody-here", WRONG)
    unknown_path = (list(spy.verified), list(spy.lockout.waits))

    assert wrong.status_code == unknown.status_code == 401
    assert without_request_id(wrong) == without_request_id(unknown)
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    # ... and run the same work: one real argon2 verify each (the unknown name's against
    # the dummy hash, made at the same cost as the account's), then the same wait
    assert wrong_path == ([(stored, False)], [QUICK_LOCKOUT.delay_for(1)])
    assert unknown_path[0] == [(spy.dummy_hash, False)]
    assert unknown_path[1] == wrong_path[1]
    assert _params(spy.dummy_hash) == _params(stored)
    assert spy.dummy_hash != stored


async def test_repeated_tries_of_an_unknown_name_slow_down_like_a_real_account(
    spied: tuple[IdentityApp, SignInSpy], pool: asyncpg.Pool
) -> None:
    """The second failure waits longer than the first, known name or not."""
    identity, spy = spied
    await make_staff()
    spy.clear()
    for _ in range(3):
        assert (await identity.sign_in("rcaseworker", WRONG)).status_code == 401
    real = list(spy.lockout.waits)
    spy.clear()
    for _ in range(3):
        assert (await identity.sign_in("ghost-user", WRONG)).status_code == 401
    assert spy.lockout.waits == real
    assert real == [QUICK_LOCKOUT.delay_for(n) for n in (1, 2, 3)]
    assert real[0] < real[1]
    # every try, known or not, ran one argon2 verify
    assert len(spy.verified) == 3 and {h for h, _ in spy.verified} == {spy.dummy_hash}
    # a name is a name whatever its case: "Ghost-User" is the same ghost's fourth try
    spy.clear()
    assert (await identity.sign_in("Ghost-User", WRONG)).status_code == 401
    assert spy.lockout.waits == [QUICK_LOCKOUT.delay_for(4)]


async def test_concurrent_guesses_at_a_customer_are_all_counted_and_lock_it(
    quick: IdentityApp, pool: asyncpg.Pool
) -> None:
    """Many wrong guesses at once, the right one among them: every failure is counted,
    the account locks at the limit, and the right password is refused from then on."""
    await make_staff()
    staff = await quick.token("rcaseworker", STAFF_PASSWORD)
    made = await new_customer(quick, staff)
    guesses = [f"wrong guess number {i}" for i in range(30)]
    guesses.insert(15, made["temporary_password"])
    answers = await asyncio.gather(*(quick.sign_in(made["username"], g) for g in guesses))
    right = answers.pop(15)
    assert all(a.status_code == 401 for a in answers)
    row = await pool.fetchrow("SELECT failed_signins, locked_until FROM customers")
    assert row is not None
    if right.status_code == 200:
        # the right guess was judged before the lock (fewer than five failures counted):
        # its success reset the count, and every failure after it is counted
        assert 26 <= row["failed_signins"] <= 30, row
    else:
        assert right.status_code == 401 and row["failed_signins"] == 30, row
    assert row["locked_until"] is not None and row["locked_until"] > datetime.now(UTC)
    again = await quick.sign_in(made["username"], made["temporary_password"])
    assert again.status_code == 401 and "access_token" not in again.text


async def test_five_failures_lock_the_account(quick: IdentityApp, pool: asyncpg.Pool) -> None:
    await make_staff()
    first = await quick.sign_in("rcaseworker", WRONG)
    for _ in range(4):
        assert (await quick.sign_in("rcaseworker", WRONG)).status_code == 401
    row = await pool.fetchrow("SELECT failed_signins, locked_until FROM staff")
    assert row is not None and row["failed_signins"] == 5
    remaining = row["locked_until"] - datetime.now(UTC)
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)

    locked = await quick.sign_in("rcaseworker", STAFF_PASSWORD)
    assert locked.status_code == 401
    assert without_request_id(locked) == without_request_id(first)
    assert "access_token" not in locked.text

    # when the lock has run out, the right password works again and resets the count
    await pool.execute("UPDATE staff SET locked_until = now() - interval '1 second'")
    assert (await quick.sign_in("rcaseworker", STAFF_PASSWORD)).status_code == 200
    row = await pool.fetchrow("SELECT failed_signins, locked_until FROM staff")
    assert row is not None and row["failed_signins"] == 0 and row["locked_until"] is None


async def test_a_successful_sign_in_resets_the_failures(
    quick: IdentityApp, pool: asyncpg.Pool
) -> None:
    await make_staff()
    for _ in range(4):
        assert (await quick.sign_in("rcaseworker", WRONG)).status_code == 401
    assert await pool.fetchval("SELECT failed_signins FROM staff") == 4
    assert (await quick.sign_in("rcaseworker", STAFF_PASSWORD)).status_code == 200
    assert await pool.fetchval("SELECT failed_signins FROM staff") == 0
    # four more failures do not lock: the count started again
    for _ in range(4):
        assert (await quick.sign_in("rcaseworker", WRONG)).status_code == 401
    assert (await quick.sign_in("rcaseworker", STAFF_PASSWORD)).status_code == 200


async def refresh(ida: IdentityApp, token: str) -> httpx.Response:
    return await ida.client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token})


async def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    await make_staff()
    first = (await identity.sign_in("rcaseworker", STAFF_PASSWORD)).json()
    r = await refresh(identity, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = await identity.client.get("/v1/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "rcaseworker"
    # only their SHA-256 is stored
    stored = {bytes(r["token_hash"]) for r in await pool.fetch("SELECT token_hash FROM "
                                                              "refresh_tokens")}
    assert stored == {hashlib.sha256(t["refresh_token"].encode()).digest()
                      for t in (first, second)}

    # the old refresh token is used up; presenting it again ends the session ...
    assert (await refresh(identity, first["refresh_token"])).status_code == 401
    # ... so the newest refresh token and the session's access token fail as well
    assert (await refresh(identity, second["refresh_token"])).status_code == 401
    me = await identity.client.get("/v1/me", headers=bearer(second["access_token"]))
    assert me.status_code == 401
    # a fresh sign-in is unaffected
    assert (await identity.sign_in("rcaseworker", STAFF_PASSWORD)).status_code == 200


async def test_a_chain_of_rotations_works_until_an_old_token_is_reused(
    identity: IdentityApp,
) -> None:
    await make_staff()
    pair = (await identity.sign_in("rcaseworker", STAFF_PASSWORD)).json()
    tokens = [pair["refresh_token"]]
    for _ in range(3):  # a chain of rotations keeps working
        r = await refresh(identity, tokens[-1])
        assert r.status_code == 200
        tokens.append(r.json()["refresh_token"])
    assert len(set(tokens)) == 4
    assert (await refresh(identity, "csc_rt_" + "A" * 43)).status_code == 401
    assert (await refresh(identity, tokens[1])).status_code == 401  # reuse of an old one
    assert (await refresh(identity, tokens[-1])).status_code == 401


async def test_an_expired_temporary_password_is_refused(
    spied: tuple[IdentityApp, SignInSpy], pool: asyncpg.Pool
) -> None:
    identity, spy = spied
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    created = await new_customer(identity, staff)
    expires = datetime.fromisoformat(created["password_expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)

    await pool.execute("UPDATE customers SET password_expires_at = now() - interval '1 minute'"
                       " WHERE id = $1::uuid", created["id"])
    stored = await pool.fetchval("SELECT password_hash FROM customers WHERE id = $1::uuid",
                                 created["id"])
    spy.clear()
    r = await identity.sign_in(created["username"], created["temporary_password"])
    assert r.status_code == 401
    assert "access_token" not in r.text
    # the password was checked and was right ...
    assert spy.verified == [(stored, True)]
    expired_waits = list(spy.lockout.waits)
    assert without_request_id(r) == without_request_id(await identity.sign_in("nobody", WRONG))
    # ... yet the refusal waits exactly as a first wrong guess does: no hint it was right
    spy.clear()
    assert (await identity.sign_in(created["username"], WRONG)).status_code == 401
    assert spy.verified == [(stored, False)]
    assert expired_waits == spy.lockout.waits == [QUICK_LOCKOUT.delay_for(1)]
    # (the right password was not counted as a failure; the wrong one was)
    assert await pool.fetchval("SELECT failed_signins FROM customers WHERE id = $1::uuid",
                               created["id"]) == 1
    # a staff reset gives a working one again
    r = await identity.client.post(
        f"/v1/customers/{created['id']}/password-reset", headers=bearer(staff))
    assert r.status_code == 200
    again = await identity.sign_in(created["username"], r.json()["temporary_password"])
    assert again.status_code == 200 and again.json()["password_change_required"] is True


async def test_hash_parameters_are_upgraded_at_the_next_sign_in(
    identity_env: dict[str, str], pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_identity() as (ida, _):  # m=19456, t=2: the CLI's parameters too
        await make_staff()
        staff = await ida.token("rcaseworker", STAFF_PASSWORD)
        created = await new_customer(ida, staff)
        restricted = await ida.token(created["username"], created["temporary_password"])
        r = await ida.client.post("/v1/me/password", headers=bearer(restricted), json={
            "current_password": created["temporary_password"], "new_password": NEW_PASSWORD})
        assert r.status_code == 204
    before = await pool.fetchval("SELECT password_hash FROM staff")
    assert before.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    customer_before = await pool.fetchval("SELECT password_hash FROM customers")
    assert "$m=19456,t=2,p=1$" in customer_before

    monkeypatch.setenv("IDENTITY_ARGON2_TIME_COST", "3")
    async with running_identity() as (ida, _):
        assert ida.settings.argon2_time_cost == 3
        assert (await ida.sign_in("rcaseworker", WRONG)).status_code == 401
        assert await pool.fetchval("SELECT password_hash FROM staff") == before  # not on failure
        await pool.execute("UPDATE staff SET failed_signins = 0")
        assert (await ida.sign_in("RCASEWORKER", STAFF_PASSWORD)).status_code == 200
        after = await pool.fetchval("SELECT password_hash FROM staff")
        assert after.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
        assert after != before
        # the upgraded hash still signs in, and is not rewritten again
        assert (await ida.sign_in("rcaseworker", STAFF_PASSWORD)).status_code == 200
        assert await pool.fetchval("SELECT password_hash FROM staff") == after
        # customers too
        assert (await ida.sign_in(created["username"], NEW_PASSWORD)).status_code == 200
        assert "$m=19456,t=3,p=1$" in await pool.fetchval("SELECT password_hash FROM customers")
