"""What identity's use cases share: a new customer account, the one password-change
sequence, a temporary password. Run in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from identity.domain.accounts import (
    CustomerInput,
    FieldError,
    InvalidInput,
    check_password,
    generate_temporary_password,
    username_candidates,
)
from identity.domain.blocking import index_keys
from identity.domain.records import AccountKind, Session
from identity.repository import accounts as repo
from identity.repository.outbox import OUTBOX
from shared.schemas.base import Event
from shared.schemas.identity import SessionEndReason, SessionRevoked
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict
from shared.servicekit.sessions import record_revoked

if TYPE_CHECKING:
    from identity.deps import Deps


async def insert_account(
    conn: Connection,
    ids: Deps,
    clean: CustomerInput,
    identifiers: Sequence[tuple[str, str]],
    *,
    source: str,
    created_by: uuid.UUID | None,
    password_hash: str | None,
    temporary: bool,
    expires_at: datetime | None,
    username: str | None = None,
) -> tuple[uuid.UUID, str]:
    """Insert an account with its SSN sealed, its identifiers and its match keys.

    ``username`` given: it must be free (Conflict otherwise); none: one is made from
    the name plus digits.
    """
    account_id = uuid.uuid4()
    if username is not None:
        if not await repo.claim_username(conn, username, account_id, "customer"):
            raise Conflict("username", "is taken")
    else:
        for candidate in username_candidates(clean.first_name, clean.last_name):
            if await repo.claim_username(conn, candidate, account_id, "customer"):
                username = candidate
                break
    assert username is not None
    sealed = ids.vault.seal(clean.ssn, account_id) if clean.ssn else None
    await repo.insert_customer(
        conn,
        id=account_id,
        username=username,
        first_name=clean.first_name,
        last_name=clean.last_name,
        date_of_birth=clean.date_of_birth,
        email=clean.email,
        ssn=(sealed.ciphertext, sealed.key_id, sealed.lookup, sealed.last4) if sealed else None,
        source=source,
        created_by=created_by,
        password_hash=password_hash,
        password_temporary=temporary,
        password_expires_at=expires_at,
        match_keys=index_keys(clean.first_name, clean.last_name, clean.date_of_birth),
    )
    held = await repo.add_identifiers(conn, account_id, identifiers)
    if held:
        kind, _ = held[0]
        index = list(identifiers).index(held[0])
        raise Conflict(f"identifiers.{index}", f"this {kind} belongs to another account")
    return account_id, username


async def replace_password(
    conn: Connection,
    ids: Deps,
    account_id: uuid.UUID,
    kind: AccountKind,
    password_hash: str,
    *,
    by: audit.Actor,
    action: str,
    event: Event | None,
    temporary: bool = False,
    expires_at: datetime | None = None,
) -> None:
    """The one password-change sequence: set the hash, end every session, audit, tell
    (staff passwords are never temporary)."""
    if kind == "staff":
        await repo.set_staff_password(conn, account_id, password_hash)
    else:
        await repo.set_customer_password(
            conn, account_id, password_hash, temporary=temporary, expires_at=expires_at
        )
        # a new password, however it came, spends every outstanding recovery link
        await repo.spend_recovery_tokens(conn, account_id)
    await end_sessions(conn, account_id,
                       "password_reset" if action == "password.reset" else "password_changed")
    await audit.record(conn, by, action, account_id)
    if event is not None:
        await ids.outbox.add(conn, event)


def temporary_password(ids: Deps) -> tuple[str, datetime]:
    return generate_temporary_password(), ids.clock.now() + ids.temporary_password_ttl


async def new_password_hash(
    ids: Deps, password: str, *, field: str, username: str, names: Sequence[str]
) -> str:
    """The hash of a new password that meets the policy; InvalidInput naming ``field``."""
    reasons = check_password(password, username=username, names=names)
    if reasons:
        raise InvalidInput([FieldError(field, r) for r in reasons])
    return await ids.passwords.hash(password)


# no access token lives longer (IDENTITY_ACCESS_TOKEN_MINUTES is at most 60; a narrowed
# token never outlives the one it came from), so a revocation may be forgotten after it
TOKEN_LIFETIME_BOUND = timedelta(minutes=61)


async def announce_ended(conn: Connection, ended: Sequence[Session],
                         reason: SessionEndReason) -> None:
    """Tell every service these sessions ended (SessionRevoked), and refuse their tokens
    here at once (identity's own revoked set, in this transaction)."""
    for session in ended:
        assert session.revoked_at is not None
        forget_after = session.revoked_at + TOKEN_LIFETIME_BOUND
        await record_revoked(conn, session.id, session.account_id, session.revoked_at,
                             forget_after)
        await OUTBOX.add(conn, SessionRevoked(
            session_id=session.id, account_id=session.account_id, kind=session.kind,
            reason=reason, revoked_at=session.revoked_at, forget_after=forget_after))


async def end_sessions(conn: Connection, account_id: uuid.UUID,
                       reason: SessionEndReason) -> int:
    """End every open session of the account, and say so; how many ended."""
    ended = await repo.revoke_sessions(conn, account_id)
    await announce_ended(conn, ended, reason)
    return len(ended)


async def end_session(conn: Connection, session_id: uuid.UUID,
                      reason: SessionEndReason) -> bool:
    """End one session, and say so; False when it had already ended."""
    ended = await repo.revoke_session(conn, session_id)
    await announce_ended(conn, [ended] if ended else [], reason)
    return ended is not None
