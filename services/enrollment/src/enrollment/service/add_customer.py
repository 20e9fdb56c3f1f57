"""Add Customer (Returning Citizens), the two steps.

Step 1 (``match``) checks the whole form and asks identity for the person's
existing accounts; it also finds Returning Citizens enrollments with the same
IDOC number. Step 2 (``submit``) takes the form and the decision: link an
accurate match, or create an account after rejecting every candidate; then
saves the enrollment and its CustomerEnrolled event in one transaction.

Both take the pool, not a connection: no transaction and no pooled connection is
held while identity is asked (a slow identity would otherwise hold the pool, and
every other request and the consumer with it). Each database step is its own
short transaction.

Step 2 needs an ``Idempotency-Key``: a repeat returns the first result, and a
failure between identity creating the account and the enrollment being saved is
finished by the retry: once the candidates are settled the key is recorded as
``matched``, and the retry goes straight back to identity with the same key,
which answers with the account it made (never a second one).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import asyncpg

from enrollment.domain import handout
from enrollment.domain.programs import (
    RETURNING_CITIZENS,
    Conflict,
    FieldError,
    Forbidden,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidInput,
    PossibleDuplicates,
)
from enrollment.domain.records import IntakeRequest, ReturningCitizen
from enrollment.domain.returning_citizens import (
    Decision,
    Intake,
    check_form,
    check_submission,
    fingerprint,
    unsettled,
)
from enrollment.repository import enrollments as enr
from enrollment.repository import programs as repo
from enrollment.repository import returning_citizens as rc_repo
from enrollment.repository.identity import (
    Candidate,
    CreatedCustomer,
    IdentityOutcomeUnknown,
    IdentityUnavailable,
)
from enrollment.service.common import Actor, known_codes, require_program_access
from shared.contracts.identity import CustomerCreate
from shared.contracts.identity import Identifier as ContractIdentifier
from shared.schemas.enrollment import CustomerEnrolled, Identifier
from shared.servicekit import audit
from shared.servicekit.db import Connection, transaction

if TYPE_CHECKING:
    from enrollment.deps import Deps

RC = RETURNING_CITIZENS
REENTRY_ROLE = "reentry"
IDOC_LOCK_WAIT_MS = 15_000  # how long a second intake of one IDOC number waits
# how long a claim on an IDOC number lives: past a submit's two identity calls (each at
# most 30 s) and its saves; a claim left by a process that died is taken over after it
IDOC_CLAIM_SECONDS = 120.0


async def authorize_adding(conn: Connection, actor: Actor) -> None:
    """Authorized for the program (else it is not there: 404) and holding the reentry role."""
    await require_program_access(conn, RC, actor)
    if REENTRY_ROLE not in actor.roles:
        raise Forbidden("adding Returning Citizens needs the reentry role")


@dataclass(frozen=True)
class Matches:
    candidates: list[Candidate]
    enrollments: list[ReturningCitizen]  # with the same IDOC number, the open one first


async def match(pool: asyncpg.Pool, deps: Deps, actor: Actor, raw: dict[str, Any]) -> Matches:
    """Step 1. Nothing is written unless identity answered (then the audit row)."""
    async with transaction(pool) as conn:
        await authorize_adding(conn, actor)
        intake = check_form(raw, today=deps.clock.today(), known=await known_codes(conn, raw))
        same_idoc = await rc_repo.by_idoc(conn, intake.idoc_number)
    candidates = await deps.identity.match(actor.token, intake.match_query())
    async with transaction(pool) as conn:
        await audit.record(
            conn, audit.Actor(actor.id, "staff"), "returning_citizen.match", None,
            {"candidates": [str(c.account_id) for c in candidates],
             "enrollments": [str(e.enrollment_id) for e in same_idoc]})
    return Matches(candidates, same_idoc)


@dataclass(frozen=True)
class Submitted:
    enrollment_id: uuid.UUID
    account_id: uuid.UUID
    account_created: bool
    username: str | None
    temporary_password: str | None = field(default=None, repr=False)
    password_expires_at: str | None = None
    replayed: bool = False
    handout_html: str = field(default="", repr=False)


def identity_key(key: str) -> str:
    """The key identity's account request goes under (one per Add Customer key)."""
    return f"returning-citizens:{key}"


def account_request(intake: Intake, decision: Decision) -> CustomerCreate:
    return CustomerCreate(
        first_name=intake.first_name, last_name=intake.last_name,
        date_of_birth=intake.date_of_birth, ssn=intake.ssn or None,
        identifiers=[ContractIdentifier(kind="idoc_number", value=intake.idoc_number)],
        rejected_account_ids=list(decision.rejected_account_ids))


def settle(candidates: list[Candidate], decision: Decision) -> Candidate | None:
    """The linked candidate (if any); 409 while a candidate is neither linked nor rejected."""
    by_id = {c.account_id: c for c in candidates}
    linked = None
    if decision.link_account_id is not None:
        linked = by_id.get(decision.link_account_id)
        if linked is None:
            raise InvalidInput([FieldError(
                "link_account_id", "is not among this person's candidate accounts")])
    left = unsettled(by_id, decision)
    if left:
        raise PossibleDuplicates(
            f"{len(left)} candidate account(s) were neither linked nor rejected",
            [by_id[a] for a in left])
    return linked


async def _idoc_free(conn: Connection, idoc_number: str) -> None:
    owner = await rc_repo.open_idoc_owner(conn, idoc_number)
    if owner is not None:
        raise Conflict(None, f"IDOC number {idoc_number} already has open Returning Citizens "
                       f"enrollment {owner}", code="idoc-number-enrolled",
                       existing_enrollment_id=str(owner))


async def submit(
    pool: asyncpg.Pool, deps: Deps, actor: Actor, raw: dict[str, Any], key: str | None
) -> Submitted:
    """Step 2: link or create, then save the enrollment.

    Every broken rule of the form comes back first (422); then the key is required
    (428). Everything from reading the key's earlier request to the saved enrollment
    happens under a claim on the IDOC number: a second intake of the same number at
    the same moment waits, then replays the first (same key) or is refused (another
    key) before identity makes an account that no enrollment would hold.

    The key's ``matched`` state is committed before identity is asked to make the
    account, so that a retry after a failure finishes the first request."""
    async with transaction(pool) as conn:
        await authorize_adding(conn, actor)
        known = await known_codes(conn, raw)
    intake, decision = check_submission(raw, today=deps.clock.today(), known=known)
    if not key:
        raise IdempotencyKeyRequired()
    request_hash = fingerprint(intake, decision)
    async with _idoc_claim(pool, intake.idoc_number):
        async with transaction(pool) as conn:
            earlier = await enr.get_intake_request(conn, actor.id, key)
        if earlier is not None and earlier.request_hash != request_hash:
            raise IdempotencyKeyReused()
        if earlier is not None and earlier.state == "done":
            done = await _replay(deps, actor, intake, decision, earlier, key)
        else:
            done = await _link_or_create(pool, deps, actor, intake, decision, key,
                                         request_hash, earlier)
    async with transaction(pool) as conn:
        return await with_handout(conn, deps, intake, done)


@contextlib.asynccontextmanager
async def _idoc_claim(pool: asyncpg.Pool, idoc_number: str) -> AsyncIterator[None]:
    """The IDOC number to this submit alone, waited for at most IDOC_LOCK_WAIT_MS (then
    409 idoc-number-busy); no connection is held while it is claimed."""
    token = uuid.uuid4()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + IDOC_LOCK_WAIT_MS / 1000
    pause = 0.01
    while True:
        async with transaction(pool) as conn:
            if await rc_repo.claim_idoc(conn, idoc_number, token, seconds=IDOC_CLAIM_SECONDS):
                break
        left = deadline - loop.time()
        if left <= 0:
            raise Conflict(None, f"another Add Customer for IDOC number {idoc_number} is "
                           "still running; try again in a moment", code="idoc-number-busy")
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.2)
    try:
        yield
    finally:  # should this not run, the claim expires
        async with transaction(pool) as conn:
            await rc_repo.release_idoc(conn, idoc_number, token)


async def _link_or_create(
    pool: asyncpg.Pool, deps: Deps, actor: Actor, intake: Intake, decision: Decision,
    key: str, request_hash: bytes, earlier: IntakeRequest | None,
) -> Submitted:
    if earlier is None:
        async with transaction(pool) as conn:
            await _idoc_free(conn, intake.idoc_number)
    linked: Candidate | None = None
    # A retry of a create whose candidates were settled goes straight to identity:
    # the account it may have made would otherwise be a candidate now.
    if earlier is None or decision.link_account_id is not None:
        linked = settle(await deps.identity.match(actor.token, intake.match_query()), decision)
        if earlier is None:
            async with transaction(pool) as conn:
                if not await enr.start_intake_request(conn, actor.id, key, request_hash):
                    other = await enr.get_intake_request(conn, actor.id, key)
                    if other is not None and other.request_hash != request_hash:
                        raise IdempotencyKeyReused()

    account: CreatedCustomer | None = None
    try:
        if linked is not None:
            await deps.identity.confirm_match(actor.token, linked.account_id,
                                             list(decision.rejected_account_ids))
            account_id, username = linked.account_id, linked.username
        else:
            account = await deps.identity.create_customer(
                actor.token, account_request(intake, decision), identity_key(key))
            account_id, username = account.id, account.username
    except (Conflict, InvalidInput):
        # identity refused and made nothing: the key is free for a corrected submit
        async with transaction(pool) as conn:
            await enr.drop_intake_request(conn, actor.id, key)
        raise
    except IdentityUnavailable as exc:  # asked to act, no answer: it may have acted
        raise IdentityOutcomeUnknown(
            str(exc), "recorded the match" if linked is not None
            else "created the account") from None
    return await _save(pool, deps, actor, intake, decision, key, request_hash, account_id,
                       username, account)


async def _replay(
    deps: Deps, actor: Actor, intake: Intake, decision: Decision, earlier: IntakeRequest,
    key: str,
) -> Submitted:
    """The first result again; a created account's temporary password comes from identity's
    stored answer to the same key (this service never keeps it)."""
    assert earlier.enrollment_id is not None and earlier.account_id is not None
    if not earlier.account_created:
        return Submitted(earlier.enrollment_id, earlier.account_id, False, earlier.username,
                         replayed=True)
    account = await deps.identity.create_customer(
        actor.token, account_request(intake, decision), identity_key(key))
    return Submitted(earlier.enrollment_id, account.id, True, account.username,
                     account.temporary_password, account.password_expires_at, replayed=True)


async def with_handout(
    conn: Connection, deps: Deps, intake: Intake, done: Submitted
) -> Submitted:
    """The printable hand-out for this answer (the temporary password only in it)."""
    names = await repo.reference_names(conn, [("institutions", intake.institution)])
    html = handout.render(
        first_name=intake.first_name, last_name=intake.last_name, username=done.username,
        temporary_password=done.temporary_password,
        password_expires_at=done.password_expires_at, signin_url=deps.signin_url,
        institution=names.get(f"institutions:{intake.institution}", intake.institution))
    return replace(done, handout_html=html)


async def _save(
    pool: asyncpg.Pool, deps: Deps, actor: Actor, intake: Intake, decision: Decision,
    key: str, request_hash: bytes, account_id: uuid.UUID, username: str | None,
    account: CreatedCustomer | None,
) -> Submitted:
    created = account is not None
    password = account.temporary_password if account else None
    expires = account.password_expires_at if account else None
    try:
        async with transaction(pool) as conn:
            row = await enr.get_intake_request(conn, actor.id, key, for_update=True)
            if row is not None and row.state == "done" and row.enrollment_id:
                # a simultaneous submit with the same key saved it first
                return Submitted(row.enrollment_id, account_id, created, username,
                                 password, expires, replayed=True)
            enrollment_id = await _enroll(conn, deps, actor, intake, decision, account_id,
                                          username, created)
            await enr.finish_intake_request(
                conn, actor.id, key, account_id=account_id, account_created=created,
                username=username, enrollment_id=enrollment_id, request_hash=request_hash)
    except asyncpg.UniqueViolationError:
        async with transaction(pool) as conn:
            await _idoc_free(conn, intake.idoc_number)  # names the enrollment that won
        raise
    return Submitted(enrollment_id, account_id, created, username, password, expires)


async def _enroll(
    conn: Connection, deps: Deps, actor: Actor, intake: Intake, decision: Decision,
    account_id: uuid.UUID, username: str | None, created: bool,
) -> uuid.UUID:
    """The enrollment, its facts, history, audit row and CustomerEnrolled (no offenses)."""
    await _idoc_free(conn, intake.idoc_number)
    await enr.lock_participation(conn, RC, account_id)
    existing = await enr.open_enrollment(conn, RC, account_id)
    if existing is not None:
        raise Conflict(None, f"this customer already has open Returning Citizens enrollment "
                       f"{existing.id}", code="already-enrolled",
                       existing_enrollment_id=str(existing.id))
    enrollment_id = uuid.uuid4()
    await enr.insert_enrollment(
        conn, id=enrollment_id, program=RC, customer_id=account_id, status="enrolled",
        on=intake.enrollment_date, reason=None, added_by=actor.id,
        enrolled_on=intake.enrollment_date)
    await rc_repo.insert(
        conn, enrollment_id=enrollment_id, idoc_number=intake.idoc_number,
        first_name=intake.first_name, last_name=intake.last_name,
        date_of_birth=intake.date_of_birth, institution=intake.institution,
        counties=intake.counties, msr_date=intake.msr_date, msr_county=intake.msr_county,
        enrollment_date=intake.enrollment_date, added_by=actor.id)
    await rc_repo.add_offenses(conn, enrollment_id, intake.offenses)
    await repo.note_customer(conn, account_id, username, intake.first_name, intake.last_name)
    await enr.add_history(conn, enrollment_id, actor_id=actor.id, action="created", changes={
        "parent_institution": intake.institution, "idoc_number": intake.idoc_number,
        "counties_of_commitment": list(intake.counties),
        "msr_date": intake.msr_date.isoformat(), "msr_county": intake.msr_county,
        "offenses": list(intake.offenses),
        "enrollment_date": intake.enrollment_date.isoformat(),
        "account": "created" if created else "linked"})
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), "returning_citizen.create", account_id,
        {"account_created": created,
         "rejected_account_ids": [str(a) for a in decision.rejected_account_ids]},
        enrollment_id=enrollment_id)
    await deps.outbox.add(conn, CustomerEnrolled(
        enrollment_id=enrollment_id, program=RC, customer_id=account_id, staff_id=actor.id,
        enrolled_on=intake.enrollment_date,
        identifiers=[Identifier(kind="idoc_number", value=intake.idoc_number)],
        institution=intake.institution, counties=list(intake.counties),
        msr_date=intake.msr_date, msr_county=intake.msr_county))
    return enrollment_id
