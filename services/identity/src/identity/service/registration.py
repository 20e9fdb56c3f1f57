"""Self-registration: a person creates their own account, after the same matcher
staff use has looked for the account they may already have."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

import asyncpg

from identity.domain.accounts import (
    CustomerInput,
    FieldError,
    InvalidInput,
    check_password,
    validate_customer,
    validate_username,
)
from identity.domain.matching import Match
from identity.domain.records import Customer, Person
from identity.repository import accounts as repo
from identity.repository import matching as mrepo
from identity.repository import registration as held
from identity.service import matcher as matcher_svc
from identity.service.common import insert_account
from shared.schemas.identity import CustomerAccountCreated
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, NotFound

if TYPE_CHECKING:
    from identity.deps import Deps



@dataclass(frozen=True)
class Registration:
    username: str
    password: str = field(repr=False)
    first_name: str
    last_name: str
    date_of_birth: date
    email: str | None = None
    ssn: str | None = field(default=None, repr=False)


def _validate(reg: Registration, today: date) -> tuple[str, CustomerInput]:
    errors: list[FieldError] = []
    clean: CustomerInput | None
    try:
        clean = validate_customer(reg.first_name, reg.last_name, reg.date_of_birth, reg.email,
                                  reg.ssn, today=today)
    except InvalidInput as exc:
        errors += exc.errors
        clean = None
    try:
        username = validate_username(reg.username)
    except ValueError as exc:
        errors.append(FieldError("username", str(exc)))
        username = reg.username
    names = [reg.first_name, reg.last_name]
    errors += [FieldError("password", r)
               for r in check_password(reg.password, username=username, names=names)]
    if errors or clean is None:
        raise InvalidInput(errors)
    return username, clean


class Outcome(StrEnum):
    """What became of a registration (the caller is told the same in every case)."""

    CREATED = "created"
    HELD = "held"  # a strong match or a known email: no account, held for staff


async def register(pool: asyncpg.Pool, ids: Deps, reg: Registration) -> Outcome:
    """Create the account unless the person may already have one.

    A strong match, or an email already on an account, makes no account: the attempt
    is held for staff beside the duplicates queue (``held_registrations``). A possible
    match creates the account and queues the pair. The route answers all three
    alike, and each does the same argon2 work (the hash is made before anything is
    looked up), so neither answer nor time tells an anonymous caller who has an
    account. A taken username is refused (409) before the person is looked for.
    """
    username, clean = _validate(reg, ids.clock.today())
    password_hash = await ids.passwords.hash(reg.password)  # every branch: same work
    person = Person(clean.first_name, clean.last_name, clean.date_of_birth, clean.ssn,
                    email=clean.email)
    async with pool.acquire() as conn, conn.transaction():
        if await held.username_taken(conn, username):
            raise Conflict("username", "is taken")
        found = await matcher_svc.find(conn, matcher_svc.Matcher(ids.vault, ids.thresholds), person)
        strong = next((m for m in found if m.band == "strong"), None)
        email_owner = (await repo.customer_by_email(conn, clean.email)
                       if clean.email else None)
        if strong is not None or email_owner is not None:
            await _hold(conn, username, clean, strong, email_owner)
            return Outcome.HELD
        account_id, username = await insert_account(
            conn, ids, clean, [], source="self", created_by=None,
            password_hash=password_hash, temporary=False, expires_at=None, username=username,
        )
        await mrepo.add_pairs(conn, account_id, [
            mrepo.FoundPair(m.candidate.account_id, round(m.probability, 4), "possible",
                            matcher_svc.evidence_of(m))
            for m in found if m.band != "weak"
        ])
        await audit.record(
            conn, audit.Actor(account_id, "customer"), "customer.register", account_id,
            {"possible_matches": len(found)})
        await ids.outbox.add(conn, CustomerAccountCreated(
            account_id=account_id, username=username, first_name=clean.first_name,
            last_name=clean.last_name, email=clean.email, source="self",
        ))
    return Outcome.CREATED


async def _hold(conn: Connection, username: str, clean: CustomerInput, strong: Match | None,
                email_owner: Customer | None) -> None:
    """Hold the attempt for staff, against the account it may be; audited (no SSN)."""
    if strong is not None:
        account_id, reason = strong.candidate.account_id, "strong-match"
        score: float | None = round(strong.probability, 4)
        evidence = matcher_svc.evidence_of(strong)
    else:
        assert email_owner is not None
        account_id, reason, score, evidence = email_owner.id, "email-in-use", None, []
    held_id = await held.hold(
        conn, account_id=account_id, reason=reason, score=score, evidence=evidence,
        username=username, first_name=clean.first_name, last_name=clean.last_name,
        date_of_birth=clean.date_of_birth, email=clean.email)
    await audit.record(conn, audit.Actor(None, "system"), "customer.register_held", account_id,
                       {"held_registration_id": held_id, "reason": reason})


async def held_registrations(
    pool: asyncpg.Pool, *, limit: int, after: int | None
) -> list[held.HeldRegistration]:
    async with pool.acquire() as conn:
        return await held.open_held(conn, limit=limit, after=after)


async def dismiss_held(pool: asyncpg.Pool, held_id: int, *, staff_id: uuid.UUID) -> None:
    """Staff dealt with a held registration (reached the person, or it was no one)."""
    async with pool.acquire() as conn, conn.transaction():
        status = await held.dismiss_held(conn, held_id, staff_id)
        if status is None:
            raise NotFound("held registration not found")
        if status != "open":
            raise Conflict("id", f"is already {status}")
        await audit.record(conn, audit.Actor(staff_id, "staff"),
                           "registration_hold.dismiss", None, {"held_registration_id": held_id})
