"""Use cases on customer accounts: staff create them, reset their passwords,
and customers recover their own."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from identity.domain.accounts import (
    FieldError,
    IdempotencyMismatch,
    InvalidCredentials,
    InvalidInput,
    PossibleDuplicates,
    normalize_identifier,
    validate_customer,
)
from identity.domain.records import Customer, Person
from identity.domain.tokens import hash_token, new_recovery_token
from identity.repository import accounts as repo
from identity.repository import matching as mrepo
from identity.service import matcher as matcher_svc
from identity.service.common import insert_account, new_password_hash, replace_password
from identity.service.common import temporary_password as new_temporary_password
from shared.schemas.identity import (
    CustomerAccountCreated,
    PasswordChanged,
    PasswordRecoveryRequested,
    PasswordResetByStaff,
)
from shared.servicekit import audit
from shared.servicekit.auth import Principal
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, NotFound
from shared.servicekit.seal import recovery_context

if TYPE_CHECKING:
    from identity.deps import Deps


@dataclass(frozen=True)
class NewCustomer:
    first_name: str
    last_name: str
    date_of_birth: date | None
    ssn: str | None = None
    email: str | None = None
    identifiers: Sequence[tuple[str, str]] = ()
    rejected_account_ids: Sequence[uuid.UUID] = ()


@dataclass(frozen=True)
class Created:
    id: uuid.UUID
    username: str
    temporary_password: str
    password_expires_at: datetime

    def body(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "temporary_password": self.temporary_password,
            "password_expires_at": self.password_expires_at.isoformat(),
        }


def _seal(kek: bytes, data: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, data, aad)


def _open(kek: bytes, blob: bytes, aad: bytes) -> bytes:
    return AESGCM(kek).decrypt(blob[:12], blob[12:], aad)


def _request_hash(cmd: NewCustomer, key: bytes) -> bytes:
    """A keyed fingerprint of the request: it holds the SSN, so no plain hash."""
    doc = json.dumps(
        {
            "first_name": cmd.first_name,
            "last_name": cmd.last_name,
            "date_of_birth": cmd.date_of_birth.isoformat() if cmd.date_of_birth else None,
            "ssn": cmd.ssn,
            "email": cmd.email,
            "identifiers": sorted(cmd.identifiers),
            "rejected": sorted(map(str, cmd.rejected_account_ids)),
        },
        sort_keys=True,
    )
    return hmac.new(key, doc.encode(), hashlib.sha256).digest()


def _clean(cmd: NewCustomer, today: date) -> tuple[Any, list[tuple[str, str]]]:
    errors: list[FieldError] = []
    try:
        clean = validate_customer(
            cmd.first_name,
            cmd.last_name,
            cmd.date_of_birth,
            cmd.email,
            cmd.ssn,
            today=today,
        )
    except InvalidInput as exc:
        errors += exc.errors
        clean = None
    identifiers: list[tuple[str, str]] = []
    for i, (kind, value) in enumerate(cmd.identifiers):
        try:
            pair = (kind, normalize_identifier(kind, value))
        except ValueError as exc:
            errors.append(FieldError(f"identifiers.{i}", str(exc)))
            continue
        if pair not in identifiers:  # "R12345" and " r12345" are one identifier
            identifiers.append(pair)
    if errors:
        raise InvalidInput(errors)
    return clean, identifiers


async def create_customer(
    pool: asyncpg.Pool,
    ids: Deps,
    cmd: NewCustomer,
    *,
    staff_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> Created:
    """Match first; create only when no unrejected candidate remains."""
    clean, identifiers = _clean(cmd, ids.clock.today())
    password, expires_at = new_temporary_password(ids)
    password_hash = await ids.passwords.hash(password)
    request_hash = _request_hash(cmd, ids.kek)
    async with pool.acquire() as conn, conn.transaction():
        if idempotency_key is not None:
            await repo.lock_idempotency_key(conn, staff_id, idempotency_key)
            earlier = await repo.idempotent_answer(conn, staff_id, idempotency_key)
            if earlier is not None:
                if earlier[0] != request_hash:
                    raise IdempotencyMismatch()
                body = json.loads(_open(ids.kek, earlier[2], idempotency_key.encode()))
                return Created(
                    uuid.UUID(body["id"]),
                    body["username"],
                    body["temporary_password"],
                    datetime.fromisoformat(body["password_expires_at"]),
                )
        idoc = next((v for k, v in identifiers if k == "idoc_number"), None)
        person = Person(clean.first_name, clean.last_name, clean.date_of_birth, clean.ssn,
                        idoc_number=idoc, email=clean.email)
        rejected = set(cmd.rejected_account_ids)
        found = await matcher_svc.find(conn, matcher_svc.Matcher(ids.vault, ids.thresholds), person)
        candidates = [m for m in found if m.candidate.account_id not in rejected]
        if candidates:
            raise PossibleDuplicates(candidates)
        if clean.email and await repo.email_taken(conn, clean.email):
            raise Conflict("email", "belongs to another account")
        account_id, username = await insert_account(
            conn, ids, clean, identifiers, source="staff", created_by=staff_id,
            password_hash=password_hash, temporary=True, expires_at=expires_at,
        )
        await mrepo.remember_different(conn, account_id, sorted(rejected), staff_id)
        await audit.record(
            conn, audit.Actor(staff_id, "staff"), "customer.create", account_id,
            {"rejected_account_ids": sorted(map(str, rejected))})
        await ids.outbox.add(
            conn,
            CustomerAccountCreated(
                account_id=account_id,
                username=username,
                first_name=clean.first_name,
                last_name=clean.last_name,
                email=clean.email,
                source="staff",
                created_by=staff_id,
                password_change_required=True,
            ),
        )
        created = Created(account_id, username, password, expires_at)
        if idempotency_key is not None:
            await repo.save_idempotent_answer(
                conn,
                staff_id,
                idempotency_key,
                request_hash,
                201,
                _seal(ids.kek, json.dumps(created.body()).encode(), idempotency_key.encode()),
            )
    return created


async def require_reach(
    conn: Connection, ids: Deps, account_id: uuid.UUID, staff: Principal, token: str
) -> None:
    """404 unless the staff member reaches the customer: the one who created the account
    does (known here at once); anyone else as groups says (503 when it cannot say)."""
    exists, created_by = await repo.creator_of(conn, account_id)
    if not exists:
        raise NotFound("customer not found")
    if created_by == staff.id:
        return
    if ids.groups_access is None:
        raise NotFound("customer not found")
    await ids.groups_access.require(token, account_id)


async def view_customer(
    conn: Connection, account_id: uuid.UUID, *, staff_id: uuid.UUID
) -> Customer:
    customer = await repo.get_customer(conn, account_id)
    if customer is None:
        raise NotFound("customer not found")
    await audit.record(conn, audit.Actor(staff_id, "staff"), "customer.view", account_id)
    return customer


async def reset_password_by_staff(
    pool: asyncpg.Pool, ids: Deps, account_id: uuid.UUID, *, staff_id: uuid.UUID
) -> tuple[str, datetime]:
    """A new temporary password, shown once; earlier sessions end."""
    password, expires_at = new_temporary_password(ids)
    password_hash = await ids.passwords.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        customer = await repo.lock_customer(conn, account_id)
        if customer is None or customer.status == "disabled":
            raise NotFound("customer not found")
        await replace_password(
            conn, ids, account_id, "customer", password_hash,
            by=audit.Actor(staff_id, "staff"), action="password.reset",
            event=PasswordResetByStaff(account_id=account_id, staff_id=staff_id),
            temporary=True, expires_at=expires_at)
    return password, expires_at


async def request_recovery(conn: Connection, ids: Deps, email: str) -> None:
    """Send a single-use link when the email is known; say nothing either way."""
    customer = await repo.customer_by_email(conn, email.strip())
    if customer is None or customer.status != "active" or customer.email is None:
        return
    token, token_hash = new_recovery_token()
    expires_at = ids.clock.now() + ids.recovery_ttl
    await repo.add_recovery_token(conn, token_hash, customer.id, expires_at)
    await audit.record(
        conn, audit.Actor(customer.id, "customer"), "password.recovery_requested", customer.id)
    # the link travels sealed for notify only: no usable token on the topic, in the
    # outbox or in a dead letter (only its hash is stored, in recovery_tokens)
    link = f"{ids.recovery_link_url}?token={quote(token, safe='')}"
    await ids.outbox.add(
        conn,
        PasswordRecoveryRequested(
            account_id=customer.id,
            email=customer.email,
            expires_at=expires_at,
            sealed_link=ids.recovery_seal.seal(link, recovery_context(customer.id)),
        ),
    )


async def complete_recovery(
    pool: asyncpg.Pool, ids: Deps, token: str, new_password: str
) -> None:
    async with pool.acquire() as conn:
        pending = await repo.pending_recovery(conn, hash_token(token))
        customer = await repo.get_customer(conn, pending) if pending else None
    if customer is None:
        raise InvalidCredentials("the link is not valid or has expired")
    password_hash = await new_password_hash(
        ids, new_password, field="new_password", username=customer.username,
        names=[customer.first_name, customer.last_name])
    async with pool.acquire() as conn, conn.transaction():
        if await repo.use_recovery_token(conn, hash_token(token)) != customer.id:
            raise InvalidCredentials("the link is not valid or has expired")
        await replace_password(
            conn, ids, customer.id, "customer", password_hash,
            by=audit.Actor(customer.id, "customer"), action="password.recovered",
            event=PasswordChanged(account_id=customer.id, via="recovery"))


async def add_program_identifiers(
    conn: Connection, customer_id: uuid.UUID, pairs: Sequence[tuple[str, str]]
) -> None:
    """A program's identifiers (an IDOC number) help find the person next time."""
    if pairs and await repo.get_customer(conn, customer_id) is not None:
        await repo.add_identifiers(conn, customer_id, list(pairs))
