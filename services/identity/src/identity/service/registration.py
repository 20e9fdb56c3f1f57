"""Self-registration: a person creates their own account, after the same matcher
staff use has looked for the account they may already have."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import asyncpg

from identity.domain.accounts import (
    AccountMayExist,
    CustomerInput,
    FieldError,
    InvalidInput,
    check_password,
    validate_customer,
    validate_username,
)
from identity.domain.matching import Person
from identity.repository import accounts as repo
from identity.repository import matching as mrepo
from identity.service import matching as matches
from identity.service.common import insert_account
from shared.schemas.identity import CustomerAccountCreated
from shared.servicekit import audit

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


async def register(pool: asyncpg.Pool, ids: Deps, reg: Registration) -> tuple[uuid.UUID, str]:
    """Create the account unless it may already exist.

    A strong match (or an email already on an account) answers AccountMayExist and
    writes nothing; a possible match creates the account and queues the pair for
    staff to look at.
    """
    username, clean = _validate(reg, ids.clock.today())
    password_hash = await ids.passwords.hash(reg.password)  # before matching: same timing
    person = Person(clean.first_name, clean.last_name, clean.date_of_birth, clean.ssn,
                    email=clean.email)
    async with pool.acquire() as conn, conn.transaction():
        found = await matches.find(conn, matches.Matcher(ids.vault, ids.thresholds), person)
        if any(m.band == "strong" for m in found) or (
            clean.email and await repo.email_taken(conn, clean.email)
        ):
            raise AccountMayExist()
        account_id, username = await insert_account(
            conn, ids, clean, [], source="self", created_by=None,
            password_hash=password_hash, temporary=False, expires_at=None, username=username,
        )
        await mrepo.add_pairs(conn, account_id, [
            mrepo.FoundPair(m.candidate.account_id, round(m.probability, 4), "possible",
                            matches.evidence_of(m))
            for m in found if m.band != "weak"
        ])
        await audit.record(
            conn, audit.Actor(account_id, "customer"), "customer.register", account_id,
            {"possible_matches": len(found)})
        await ids.outbox.add(conn, CustomerAccountCreated(
            account_id=account_id, username=username, first_name=clean.first_name,
            last_name=clean.last_name, email=clean.email, source="self",
        ))
    return account_id, username
