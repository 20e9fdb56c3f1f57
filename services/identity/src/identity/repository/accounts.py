"""All SQL of the identity service. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from identity.domain.records import AccountKind, Credentials, Customer, Session, Staff, StoredKey
from shared.servicekit.audit import Actor, record
from shared.servicekit.db import Connection
from shared.servicekit.idempotency import IdempotencyStore

# -- usernames ---------------------------------------------------------------------


async def claim_username(conn: Connection, username: str, account_id: UUID, kind: str) -> bool:
    """Reserve a username for an account; False when it is taken (any case)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO usernames (username_lower, account_id, kind) VALUES (lower($1), $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            username,
            account_id,
            kind,
        )
    )


# -- customers ---------------------------------------------------------------------

_CUSTOMER_COLUMNS = (
    "c.id, c.username, c.first_name, c.last_name, c.date_of_birth, c.email, c.ssn_last4,"
    " c.status, c.password_is_temporary, c.source, c.created_at,"
    " coalesce((SELECT array_agg(ARRAY[i.kind, i.value] ORDER BY i.kind, i.value)"
    "  FROM customer_identifiers i WHERE i.account_id = c.id), '{}') AS identifiers"
)


def _customer(r: asyncpg.Record) -> Customer:
    return Customer(
        id=r["id"],
        username=r["username"],
        first_name=r["first_name"],
        last_name=r["last_name"],
        date_of_birth=r["date_of_birth"],
        email=r["email"],
        ssn_last4=r["ssn_last4"],
        status=r["status"],
        password_change_required=r["password_is_temporary"],
        source=r["source"],
        created_at=r["created_at"],
        identifiers=tuple((k, v) for k, v in r["identifiers"]),
    )


async def insert_customer(
    conn: Connection,
    *,
    id: UUID,
    username: str,
    first_name: str,
    last_name: str,
    date_of_birth: date | None,
    email: str | None,
    ssn: tuple[bytes, str, bytes, str] | None,
    source: str,
    created_by: UUID | None,
    password_hash: str | None,
    password_temporary: bool,
    password_expires_at: datetime | None,
    match_keys: Sequence[int],
) -> None:
    ciphertext, key_id, lookup, last4 = ssn if ssn else (None, None, None, None)
    await conn.execute(
        "INSERT INTO customers (id, username, first_name, last_name, date_of_birth, email,"
        " ssn_ciphertext, ssn_key_id, ssn_lookup, ssn_last4, source, created_by,"
        " password_hash, password_is_temporary, password_expires_at, match_keys)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
        id,
        username,
        first_name,
        last_name,
        date_of_birth,
        email,
        ciphertext,
        key_id,
        lookup,
        last4,
        source,
        created_by,
        password_hash,
        password_temporary,
        password_expires_at,
        list(match_keys),
    )


async def add_identifiers(
    conn: Connection, account_id: UUID, identifiers: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Add what no account holds yet; returns the identifiers another account holds."""
    rows = await conn.fetch(
        "INSERT INTO customer_identifiers (account_id, kind, value)"
        " SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)"
        " ON CONFLICT DO NOTHING RETURNING kind, value",
        account_id, [k for k, _ in identifiers], [v for _, v in identifiers],
    )
    added = {(r["kind"], r["value"]) for r in rows}
    return [i for i in identifiers if i not in added]


async def creator_of(conn: Connection, account_id: UUID) -> tuple[bool, UUID | None]:
    """(whether the customer exists, who created the account: None for self-registered
    or imported ones), in one read."""
    row = await conn.fetchrow("SELECT created_by FROM customers WHERE id = $1", account_id)
    return (row is not None, row["created_by"] if row is not None else None)


async def get_customer(conn: Connection, account_id: UUID) -> Customer | None:
    r = await conn.fetchrow(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers c WHERE c.id = $1",  # noqa: S608
        account_id,
    )
    return _customer(r) if r else None


async def lock_customer(conn: Connection, account_id: UUID) -> Customer | None:
    """The customer's row, locked for the rest of the transaction."""
    found = await conn.fetchval("SELECT id FROM customers WHERE id = $1 FOR UPDATE", account_id)
    return await get_customer(conn, account_id) if found else None


async def email_taken(conn: Connection, email: str) -> bool:
    return bool(
        await conn.fetchval("SELECT true FROM customers WHERE lower(email) = lower($1)", email)
    )


async def set_customer_password(
    conn: Connection,
    account_id: UUID,
    password_hash: str,
    *,
    temporary: bool,
    expires_at: datetime | None,
) -> None:
    await conn.execute(
        "UPDATE customers SET password_hash = $2, password_is_temporary = $3,"
        " password_expires_at = $4, failed_signins = 0, locked_until = NULL,"
        " updated_at = now() WHERE id = $1",
        account_id,
        password_hash,
        temporary,
        expires_at,
    )


async def customer_by_email(conn: Connection, email: str) -> Customer | None:
    r = await conn.fetchrow(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers c WHERE lower(c.email) = lower($1)",  # noqa: S608
        email,
    )
    return _customer(r) if r else None


# -- staff -------------------------------------------------------------------------


def _staff(r: asyncpg.Record) -> Staff:
    return Staff(
        id=r["id"],
        username=r["username"],
        first_name=r["first_name"],
        last_name=r["last_name"],
        email=r["email"],
        roles=tuple(r["roles"]),
        status=r["status"],
        created_at=r["created_at"],
    )


async def insert_staff(
    conn: Connection,
    *,
    id: UUID,
    username: str,
    first_name: str,
    last_name: str,
    email: str | None,
    roles: Sequence[str],
    password_hash: str,
) -> None:
    await conn.execute(
        "INSERT INTO staff (id, username, first_name, last_name, email, roles, password_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        username,
        first_name,
        last_name,
        email,
        sorted(roles),
        password_hash,
    )


async def get_staff(conn: Connection, staff_id: UUID) -> Staff | None:
    r = await conn.fetchrow("SELECT * FROM staff WHERE id = $1", staff_id)
    return _staff(r) if r else None


async def set_staff_password(conn: Connection, staff_id: UUID, password_hash: str) -> None:
    await conn.execute(
        "UPDATE staff SET password_hash = $2, failed_signins = 0, locked_until = NULL,"
        " updated_at = now() WHERE id = $1",
        staff_id,
        password_hash,
    )


# -- sign-in -----------------------------------------------------------------------


async def credentials_for(conn: Connection, username: str) -> Credentials | None:
    """The account a username names, customer or staff, with what sign-in needs."""
    r = await conn.fetchrow(
        "SELECT u.kind, coalesce(c.id, s.id) AS id, coalesce(c.username, s.username) AS username,"
        " coalesce(c.first_name, s.first_name) AS first_name,"
        " coalesce(c.last_name, s.last_name) AS last_name,"
        " coalesce(c.status, s.status) AS status,"
        " coalesce(c.password_hash, s.password_hash) AS password_hash,"
        " coalesce(c.password_is_temporary, false) AS password_is_temporary,"
        " c.password_expires_at,"
        " coalesce(c.failed_signins, s.failed_signins) AS failed_signins,"
        " coalesce(c.locked_until, s.locked_until) AS locked_until,"
        " coalesce(s.roles, '{}') AS roles"
        " FROM usernames u"
        " LEFT JOIN customers c ON u.kind = 'customer' AND c.id = u.account_id"
        " LEFT JOIN staff s ON u.kind = 'staff' AND s.id = u.account_id"
        " WHERE u.username_lower = lower($1)",
        username,
    )
    if r is None:
        return None
    return Credentials(
        id=r["id"],
        kind=r["kind"],
        username=r["username"],
        first_name=r["first_name"],
        last_name=r["last_name"],
        status=r["status"],
        password_hash=r["password_hash"],
        password_is_temporary=r["password_is_temporary"],
        password_expires_at=r["password_expires_at"],
        failed_signins=r["failed_signins"],
        locked_until=r["locked_until"],
        roles=tuple(r["roles"]),
    )


def _account_table(kind: AccountKind) -> str:
    return "customers" if kind == "customer" else "staff"


async def record_signin_failure(conn: Connection, kind: AccountKind, account_id: UUID) -> int:
    """Count one failure atomically (the row stays locked until the caller commits, so
    concurrent failures are counted one after another); the new count."""
    table = _account_table(kind)  # one of two fixed names, never user input
    return int(
        await conn.fetchval(
            f"UPDATE {table} SET failed_signins = failed_signins + 1"  # noqa: S608
            " WHERE id = $1 RETURNING failed_signins",
            account_id,
        )
    )


async def lock_account(
    conn: Connection, kind: AccountKind, account_id: UUID, until: datetime
) -> None:
    table = _account_table(kind)
    await conn.execute(
        f"UPDATE {table} SET locked_until = greatest(locked_until, $2) WHERE id = $1",  # noqa: S608
        account_id, until,
    )


async def locked_until_now(
    conn: Connection, kind: AccountKind, account_id: UUID
) -> datetime | None:
    """The account's lock, read with the row locked (a sign-in re-checks it here)."""
    table = _account_table(kind)
    value: datetime | None = await conn.fetchval(
        f"SELECT locked_until FROM {table} WHERE id = $1 FOR UPDATE",  # noqa: S608
        account_id,
    )
    return value


async def record_signin_success(conn: Connection, kind: AccountKind, account_id: UUID) -> None:
    table = _account_table(kind)
    await conn.execute(
        f"UPDATE {table} SET failed_signins = 0, locked_until = NULL WHERE id = $1",  # noqa: S608
        account_id,
    )


async def upgrade_password_hash(
    conn: Connection, kind: AccountKind, account_id: UUID, password_hash: str
) -> None:
    table = _account_table(kind)
    await conn.execute(
        f"UPDATE {table} SET password_hash = $2 WHERE id = $1",  # noqa: S608
        account_id,
        password_hash,
    )


# -- sessions and refresh tokens -----------------------------------------------------


async def create_session(
    conn: Connection, session_id: UUID, account_id: UUID, kind: AccountKind, scope: str | None
) -> None:
    await conn.execute(
        "INSERT INTO sessions (id, account_id, kind, scope) VALUES ($1, $2, $3, $4)",
        session_id,
        account_id,
        kind,
        scope,
    )


async def get_session(conn: Connection, session_id: UUID) -> Session | None:
    r = await conn.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)
    if r is None:
        return None
    return Session(r["id"], r["account_id"], r["kind"], r["scope"], r["revoked_at"])


async def revoke_sessions(conn: Connection, account_id: UUID) -> list[Session]:
    """End every open session of the account; the sessions ended now."""
    rows = await conn.fetch(
        "UPDATE sessions SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL"
        " RETURNING id, account_id, kind, scope, revoked_at",
        account_id,
    )
    return [Session(r["id"], r["account_id"], r["kind"], r["scope"], r["revoked_at"])
            for r in rows]


async def revoke_session(conn: Connection, session_id: UUID) -> Session | None:
    """End the session; the session if it was open until now."""
    r = await conn.fetchrow(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
        " RETURNING id, account_id, kind, scope, revoked_at", session_id
    )
    return Session(r["id"], r["account_id"], r["kind"], r["scope"], r["revoked_at"]) if r else None


async def add_refresh_token(
    conn: Connection, token_hash: bytes, session_id: UUID, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        session_id,
        expires_at,
    )


async def use_refresh_token(conn: Connection, token_hash: bytes) -> tuple[UUID, bool, bool] | None:
    """Mark a refresh token used. Returns (session id, was it already used, is it expired)."""
    r = await conn.fetchrow(
        "WITH old AS (SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE)"
        " UPDATE refresh_tokens t SET used_at = coalesce(t.used_at, now()) FROM old"
        " WHERE t.token_hash = old.token_hash"
        " RETURNING old.session_id, old.used_at IS NOT NULL AS reused,"
        " old.expires_at < now() AS expired",
        token_hash,
    )
    return (r["session_id"], r["reused"], r["expired"]) if r else None


# -- recovery links ----------------------------------------------------------------------


async def add_recovery_token(
    conn: Connection, token_hash: bytes, account_id: UUID, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO recovery_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        account_id,
        expires_at,
    )


async def pending_recovery(conn: Connection, token_hash: bytes) -> UUID | None:
    found: UUID | None = await conn.fetchval(
        "SELECT account_id FROM recovery_tokens WHERE token_hash = $1"
        " AND used_at IS NULL AND expires_at > now()",
        token_hash,
    )
    return found


async def use_recovery_token(conn: Connection, token_hash: bytes) -> UUID | None:
    """The account of an unused, unexpired link token, which is used up now."""
    found: UUID | None = await conn.fetchval(
        "UPDATE recovery_tokens SET used_at = now()"
        " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()"
        " RETURNING account_id",
        token_hash,
    )
    return found


async def spend_recovery_tokens(conn: Connection, account_id: UUID) -> int:
    """Every outstanding link of the account is used up (a recovery completed, or the
    password changed in any other way); returns how many were still open."""
    done: str = await conn.execute(
        "UPDATE recovery_tokens SET used_at = now()"
        " WHERE account_id = $1 AND used_at IS NULL",
        account_id,
    )
    return int(done.rsplit(" ", 1)[-1])


# -- signing keys --------------------------------------------------------------------------


async def signing_keys(conn: Connection) -> list[StoredKey]:
    rows = await conn.fetch(
        "SELECT kid, sealed, status, created_at FROM signing_keys ORDER BY created_at"
    )
    return [StoredKey(r["kid"], bytes(r["sealed"]), r["status"], r["created_at"]) for r in rows]


async def lock_signing_keys(conn: Connection) -> None:
    await conn.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")


async def add_signing_key(conn: Connection, key: StoredKey) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, sealed, status, created_at) VALUES ($1, $2, $3, $4)",
        key.kid,
        key.sealed,
        key.status,
        key.created_at,
    )


async def set_signing_key_status(conn: Connection, kid: str, status: str) -> None:
    await conn.execute("UPDATE signing_keys SET status = $2 WHERE kid = $1", kid, status)


# -- idempotency -----------------------------------------------------------------------------


# the answer to a customer creation under a staff member's Idempotency-Key, sealed
IDEMPOTENCY = IdempotencyStore("idempotency_keys", kept=("status_code", "sealed_body"))


async def idempotent_answer(
    conn: Connection, staff_id: UUID, key: str
) -> tuple[bytes, int, bytes] | None:
    r = await IDEMPOTENCY.get(conn, staff_id, key)
    if r is None:
        return None
    return r.request_hash, int(r.values["status_code"]), bytes(r.values["sealed_body"])


async def lock_idempotency_key(conn: Connection, staff_id: UUID, key: str) -> None:
    """Serialise requests with the same key: the second waits for the first."""
    await IDEMPOTENCY.lock(conn, staff_id, key)


async def save_idempotent_answer(
    conn: Connection, staff_id: UUID, key: str, request_hash: bytes, status: int, sealed: bytes
) -> None:
    await IDEMPOTENCY.finish(conn, staff_id, key, request_hash,
                             {"status_code": status, "sealed_body": sealed})


# -- audit -------------------------------------------------------------------------------------


async def audit(
    conn: Connection,
    *,
    actor_id: UUID | None,
    actor_kind: str,
    action: str,
    target_id: UUID | None,
    request_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Kept for ``identity.matches`` until its own branch lands; use
    ``shared.servicekit.audit.record`` (it takes the request id itself)."""
    await record(conn, Actor(actor_id, actor_kind), action,  # type: ignore[arg-type]
                 target_id, details)
