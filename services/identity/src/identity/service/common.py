"""What identity's use cases share: a new customer account, the one password-change
sequence, a temporary password. Run in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
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
from identity.domain.records import AccountKind
from identity.repository import accounts as repo
from shared.schemas.base import Event
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict

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
    await repo.revoke_sessions(conn, account_id)
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
