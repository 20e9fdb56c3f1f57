"""Identity use cases: one function per command.

Each takes the pool (a password hash is computed before the transaction, off
the event loop) or a connection, and changes state, audit rows and outbox
events in one transaction. Errors are ``DomainError`` subclasses; only
``api.py`` turns them into HTTP answers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

import asyncpg

from identity.domain.accounts import (
    STAFF_ROLES,
    FieldError,
    InvalidCredentials,
    InvalidInput,
    SessionRevoked,
    check_password,
    validate_username,
)
from identity.domain.records import AccountKind, Credentials, Customer, Staff, StoredKey
from identity.domain.tokens import (
    ExchangeRefused,
    KeyRing,
    generate_signing_key,
    hash_token,
    issue_access_token,
    issue_exchanged_token,
    new_refresh_token,
    open_private_key,
    seal_private_key,
)
from identity.repository import accounts as repo
from identity.service.common import end_session, new_password_hash, replace_password
from shared.schemas.identity import PasswordChanged, StaffAccountCreated
from shared.servicekit import audit
from shared.servicekit.auth import JwksVerifier, TokenError
from shared.servicekit.db import Connection
from shared.servicekit.delegation import audiences, not_for, session_ended
from shared.servicekit.errors import Conflict, NotFound

if TYPE_CHECKING:
    from identity.deps import Deps

# -- signing keys -----------------------------------------------------------------------


async def load_keyring(conn: Connection, kek: bytes) -> KeyRing:
    stored = await repo.signing_keys(conn)
    return KeyRing(
        (open_private_key(k.sealed, k.kid, k.created_at, kek), k.status)  # type: ignore[misc]
        for k in stored
    )


async def ensure_signing_key(conn: Connection, ids: Deps) -> KeyRing:
    """At start-up: make sure an active key exists (the first instance creates it)."""
    async with conn.transaction():
        await repo.lock_signing_keys(conn)
        stored = await repo.signing_keys(conn)
        if not any(k.status == "active" for k in stored):
            key = generate_signing_key(ids.clock.now())
            await repo.add_signing_key(
                conn, StoredKey(key.kid, seal_private_key(key, ids.kek), "active", key.created_at)
            )
        return await load_keyring(conn, ids.kek)


async def rotate_keys(conn: Connection, ids: Deps) -> str:
    """A new active key; the old one keeps verifying (published) until it retires."""
    async with conn.transaction():
        await repo.lock_signing_keys(conn)
        ring = await load_keyring(conn, ids.kek)
        new, statuses = ring.rotate(ids.clock.now())
        await repo.add_signing_key(
            conn, StoredKey(new.kid, seal_private_key(new, ids.kek), "active", new.created_at)
        )
        for key, status in statuses:
            if key.kid != new.kid:
                await repo.set_signing_key_status(conn, key.kid, status)
    return new.kid


# -- staff ----------------------------------------------------------------------------------


def _check_names(first_name: str, last_name: str) -> list[FieldError]:
    errors = []
    for field, value in (("first_name", first_name), ("last_name", last_name)):
        if not value.strip() or len(value.strip()) > 100:
            errors.append(FieldError(field, "must be 1 to 100 characters"))
    return errors


async def create_staff(
    pool: asyncpg.Pool,
    ids: Deps,
    *,
    username: str,
    first_name: str,
    last_name: str,
    email: str | None,
    roles: Sequence[str],
    password: str,
    actor_id: uuid.UUID | None = None,
) -> uuid.UUID:
    errors = _check_names(first_name, last_name)
    try:
        username = validate_username(username)
    except ValueError as exc:
        errors.append(FieldError("username", str(exc)))
    unknown = sorted(set(roles) - STAFF_ROLES)
    if not roles or unknown:
        errors.append(
            FieldError("roles", f"must be one or more of {', '.join(sorted(STAFF_ROLES))}")
        )
    errors += [
        FieldError("password", r)
        for r in check_password(password, username=username, names=[first_name, last_name])
    ]
    if errors:
        raise InvalidInput(errors)
    password_hash = await ids.passwords.hash(password)
    staff_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        if not await repo.claim_username(conn, username, staff_id, "staff"):
            raise Conflict("username", "is already taken")
        await repo.insert_staff(
            conn,
            id=staff_id,
            username=username,
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            email=email,
            roles=roles,
            password_hash=password_hash,
        )
        await audit.record(
            conn, audit.Actor(actor_id, "staff" if actor_id else "system"), "staff.create",
            staff_id, {"roles": sorted(roles)})
        await ids.outbox.add(
            conn,
            StaffAccountCreated(
                staff_id=staff_id,
                username=username,
                name=f"{first_name.strip()} {last_name.strip()}",
                email=email,
                roles=sorted(roles),
            ),
        )
    return staff_id


# -- sign-in and sessions ---------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    password_change_required: bool


def _may_sign_in(c: Credentials, now: datetime) -> bool:
    if c.status != "active" or c.password_hash is None:
        return False
    if c.locked_until is not None and c.locked_until > now:
        return False
    return not (
        c.password_is_temporary
        and c.password_expires_at is not None
        and c.password_expires_at <= now
    )


async def _open_session(
    conn: Connection,
    ids: Deps,
    c: Credentials | tuple[uuid.UUID, AccountKind, tuple[str, ...], bool],
    session_id: uuid.UUID | None = None,
) -> TokenPair:
    """Tokens for a new session, or new tokens for a session being refreshed."""
    if isinstance(c, Credentials):
        account_id, kind, roles, restricted = c.id, c.kind, c.roles, c.password_is_temporary
    else:
        account_id, kind, roles, restricted = c
    assert ids.keyring is not None
    now = ids.clock.now()
    if session_id is None:
        session_id = uuid.uuid4()
        await repo.create_session(
            conn, session_id, account_id, kind, "password-change" if restricted else None
        )
    refresh, refresh_hash = new_refresh_token()
    if not restricted:  # a temporary password's token cannot be refreshed
        await repo.add_refresh_token(conn, refresh_hash, session_id, now + ids.tokens.refresh_ttl)
    access = issue_access_token(
        ids.keyring.signing_key(),
        subject=str(account_id),
        kind=kind,
        roles=roles if kind == "staff" else (),
        session_id=str(session_id),
        password_change_required=restricted,
        now=now,
        settings=ids.tokens,
    )
    return TokenPair(
        access,
        "" if restricted else refresh,
        int(ids.tokens.access_ttl.total_seconds()),
        restricted,
    )


async def sign_in(pool: asyncpg.Pool, ids: Deps, username: str, password: str) -> TokenPair:
    """Same answer, and about the same time, whether or not the username exists."""
    async with pool.acquire() as conn:
        found = await repo.credentials_for(conn, username)
    now = ids.clock.now()
    if found is None or found.password_hash is None:
        await ids.passwords.verify_dummy(password)
        await asyncio.sleep(ids.lockout.delay_for(ids.note_unknown_failure(username)))
        raise InvalidCredentials("invalid username or password")
    ok = await ids.passwords.verify(found.password_hash, password)
    if not ok or not _may_sign_in(found, now):
        await _refuse(pool, ids, found, count=not ok)
    new_hash = None
    if ids.passwords.needs_rehash(found.password_hash):
        new_hash = await ids.passwords.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        # the lock again, under the row's lock: failures counted while this password
        # was being checked may have locked the account meanwhile
        locked = await repo.locked_until_now(conn, found.kind, found.id)
        if locked is None or locked <= ids.clock.now():
            await repo.record_signin_success(conn, found.kind, found.id)
            if new_hash is not None:
                await repo.upgrade_password_hash(conn, found.kind, found.id, new_hash)
            return await _open_session(conn, ids, found)
    await _refuse(pool, ids, found, count=False)


async def _refuse(pool: asyncpg.Pool, ids: Deps, found: Credentials, *, count: bool
                  ) -> NoReturn:
    """A refused sign-in: a wrong password is counted and locks the account at the
    limit (count and lock in one transaction on the row); every refusal waits."""
    failures = found.failed_signins + 1
    if count:
        async with pool.acquire() as conn, conn.transaction():
            failures = await repo.record_signin_failure(conn, found.kind, found.id)
            until = ids.lockout.locked_until(failures, ids.clock.now())
            if until is not None:
                await repo.lock_account(conn, found.kind, found.id, until)
            await audit.record(conn, audit.Actor.system(), "signin.failed", found.id)
    # the right password on a locked (or expired, disabled) account waits as
    # long as a wrong one: the delay must not tell that the password was right
    await asyncio.sleep(ids.lockout.delay_for(failures))
    raise InvalidCredentials("invalid username or password")


async def refresh(pool: asyncpg.Pool, ids: Deps, refresh_token: str) -> TokenPair:
    """Rotate a refresh token. A token presented twice revokes its whole session."""
    async with pool.acquire() as conn, conn.transaction():
        used = await repo.use_refresh_token(conn, hash_token(refresh_token))
        if used is None:
            raise InvalidCredentials("invalid refresh token")
        session_id, reused, expired = used
        session = await repo.get_session(conn, session_id)
        account = None
        if session is not None and session.revoked_at is None and not reused and not expired:
            account = await _account_for_session(conn, session.account_id, session.kind)
        if account is not None and not account[3]:
            return await _open_session(conn, ids, account, session_id)
        # A used token presented again: someone holds a copy. End the session,
        # so the newest refresh token (the rightful one or the thief's) dies too.
        await end_session(conn, session_id, "refresh_reused")
    # Committed: the session is revoked.
    raise InvalidCredentials("invalid refresh token")


async def _account_for_session(
    conn: Connection, account_id: uuid.UUID, kind: AccountKind
) -> tuple[uuid.UUID, AccountKind, tuple[str, ...], bool] | None:
    if kind == "staff":
        staff = await repo.get_staff(conn, account_id)
        if staff is None or staff.status != "active":
            return None
        return staff.id, "staff", staff.roles, False
    customer = await repo.get_customer(conn, account_id)
    if customer is None or customer.status != "active":
        return None
    return customer.id, "customer", (), customer.password_change_required


async def my_account(
    conn: Connection, account_id: uuid.UUID, kind: AccountKind, session_id: str
) -> Staff | Customer | None:
    """The signed-in account; its session must still be open."""
    await check_session(conn, session_id)
    if kind == "staff":
        return await repo.get_staff(conn, account_id)
    return await repo.get_customer(conn, account_id)


async def check_session(conn: Connection, session_id: str) -> None:
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise SessionRevoked("session ended") from None
    session = await repo.get_session(conn, sid)
    if session is None or session.revoked_at is not None:
        raise SessionRevoked("session ended")


async def sign_out(conn: Connection, session_id: str) -> None:
    """End the session the token belongs to: its refresh tokens stop working here, and
    every service refuses its access tokens within about a second (SessionRevoked)."""
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise SessionRevoked("session ended") from None
    if not await end_session(conn, sid, "sign_out"):
        raise SessionRevoked("session ended")


async def exchange(conn: Connection, ids: Deps, subject_claims: dict[str, object],
                   audiences: Sequence[str]) -> tuple[str, int]:
    """RFC 8693 token exchange: a verified token narrowed to ``audiences`` (among its
    own), for a service calling another on the person's behalf. (token, seconds)."""
    await check_session(conn, str(subject_claims.get("sid", "")))
    assert ids.keyring is not None
    try:
        return issue_exchanged_token(ids.keyring.signing_key(), dict(subject_claims),
                                     audiences, now=ids.clock.now(), settings=ids.tokens)
    except ExchangeRefused as exc:
        raise InvalidInput([FieldError("audience", str(exc))]) from None


class LocalExchange:
    """identity narrows a caller's token itself when it calls another service (groups,
    asked who reaches a customer): the kit's NarrowedBearer without an HTTP round trip."""

    def __init__(self, ids: Deps) -> None:
        self.ids = ids
        self.verifier: JwksVerifier | None = None  # identity's own, set at start-up

    async def for_audience(self, token: str, audience: str) -> str:
        if audiences(token) == [audience]:
            return token
        assert self.verifier is not None and self.ids.keyring is not None
        try:
            claims = await self.verifier.claims_for_exchange(token)
        except TokenError:
            raise session_ended() from None
        try:
            narrowed, _ = issue_exchanged_token(
                self.ids.keyring.signing_key(), claims, [audience], now=self.ids.clock.now(),
                settings=self.ids.tokens)
        except ExchangeRefused:
            raise not_for(audience) from None
        return narrowed


async def change_password(
    pool: asyncpg.Pool,
    ids: Deps,
    *,
    account_id: uuid.UUID,
    kind: AccountKind,
    current_password: str,
    new_password: str,
) -> None:
    """Change one's own password; every earlier session and refresh token ends."""
    async with pool.acquire() as conn:
        if kind == "staff":
            staff = await repo.get_staff(conn, account_id)
            username = staff.username if staff else ""
        else:
            customer = await repo.get_customer(conn, account_id)
            username = customer.username if customer else ""
        cred = await repo.credentials_for(conn, username) if username else None
    if cred is None or cred.password_hash is None:
        raise NotFound("account not found")
    if not await ids.passwords.verify(cred.password_hash, current_password):
        raise InvalidInput([FieldError("current_password", "is not the current password")])
    if current_password == new_password:
        raise InvalidInput([FieldError("new_password", "must differ from the current password")])
    new_hash = await new_password_hash(
        ids, new_password, field="new_password", username=cred.username,
        names=[cred.first_name, cred.last_name])
    async with pool.acquire() as conn, conn.transaction():
        await replace_password(
            conn, ids, account_id, kind, new_hash, by=audit.Actor(account_id, kind),
            action="password.change",
            event=PasswordChanged(account_id=account_id, via="self") if kind == "customer"
            else None)
