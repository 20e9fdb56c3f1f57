"""Use cases of person matching: search with evidence, staff decisions, the
duplicates queue (fed by each account's own events), merge and unmerge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from identity.deps import OUTBOX, thresholds_from
from identity.domain.accounts import FieldError, InvalidInput, MatchFields
from identity.domain.blocking import SsnRelation, query_keys, ssn_slips
from identity.domain.matching import Match, Person, Thresholds, rank
from identity.domain.ssn import SsnVault
from identity.repository import accounts as repo
from identity.repository import matching as mrepo
from identity.settings import IdentitySettings
from shared.schemas.identity import CustomerAccountsMerged, CustomerAccountsUnmerged
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, NotFound
from shared.servicekit.logs import correlation_id


@dataclass(frozen=True)
class Matcher:
    """What matching needs: the SSN vault (for keyed lookups) and the thresholds."""

    vault: SsnVault
    thresholds: Thresholds

    @classmethod
    def from_settings(cls, s: IdentitySettings) -> Matcher:
        vault = SsnVault.from_settings(
            s.ssn_keys.get_secret_value(), s.ssn_active_key, s.ssn_hmac_key.get_secret_value()
        )
        return cls(vault, thresholds_from(s))


def person_of(fields: MatchFields) -> Person:
    return Person(
        first_name=fields.first_name,
        last_name=fields.last_name,
        date_of_birth=fields.date_of_birth,
        ssn_digits=fields.ssn,
        idoc_number=fields.idoc_number,
        email=fields.email,
    )


def ssn_lookups(vault: SsnVault, digits: str) -> dict[bytes, SsnRelation]:
    """Keyed hashes of the SSN and of each slip of it the SSA could have issued."""
    slips = ssn_slips(digits)
    out: dict[bytes, SsnRelation] = {vault.lookup(digits): "equal"}
    hashes = vault.lookups_of_digits([d for d, _ in slips])
    for lookup, (_, relation) in zip(hashes, slips, strict=True):
        out.setdefault(lookup, relation)
    return out


async def find(
    conn: Connection, matcher: Matcher, person: Person, *, exclude: Sequence[uuid.UUID] = ()
) -> list[Match]:
    """The best candidates for ``person`` at or above ``possible``, best first."""
    lookups = ssn_lookups(matcher.vault, person.ssn_digits) if person.ssn_digits else {}
    found = await mrepo.candidates(
        conn,
        keys=query_keys(person.first_name, person.last_name, person.date_of_birth),
        ssn_lookups=lookups,
        idoc_number=person.idoc_number,
        email=person.email,
        exclude=exclude,
        query_has_ssn=bool(person.ssn_digits),
    )
    return rank(person, found, matcher.thresholds)


def evidence_of(m: Match) -> list[dict[str, Any]]:
    return [{"field": e.field, "outcome": e.outcome, "weight": e.weight} for e in m.evidence]


def _given(fields: MatchFields) -> list[str]:
    """The names of the fields a search used (never their values)."""
    names = ("first_name", "last_name", "date_of_birth", "ssn", "idoc_number", "email")
    return [n for n in names if getattr(fields, n) is not None]


async def search(
    pool: asyncpg.Pool,
    matcher: Matcher,
    fields: MatchFields,
    *,
    staff_id: uuid.UUID,
    account_id: uuid.UUID | None = None,
) -> list[Match]:
    """Candidates for a person; with ``account_id``, for that account (itself and the
    accounts remembered as other people left out). Audited with what was shown
    before the answer leaves (a read and one append: no transaction needed)."""
    async with pool.acquire() as conn:
        exclude: list[uuid.UUID] = []
        if account_id is not None:
            if not await mrepo.existing_accounts(conn, [account_id]):
                raise NotFound("customer not found")
            exclude = [account_id, *await mrepo.known_different(conn, account_id)]
        matches = await find(conn, matcher, person_of(fields), exclude=exclude)
        await repo.audit(
            conn, actor_id=staff_id, actor_kind="staff", action="match.search",
            target_id=account_id, request_id=correlation_id.get(),
            details={"fields": _given(fields),
                     "shown": [str(m.candidate.account_id) for m in matches]},
        )
    return matches


async def confirm(
    pool: asyncpg.Pool,
    account_id: uuid.UUID,
    *,
    rejected: Sequence[uuid.UUID],
    staff_id: uuid.UUID,
) -> None:
    """Staff chose ``account_id`` as the person (no new account); the candidates they
    rejected are remembered as other people than it."""
    async with pool.acquire() as conn, conn.transaction():
        if not await mrepo.existing_accounts(conn, [account_id]):
            raise NotFound("customer not found")
        await mrepo.remember_different(conn, account_id, rejected, staff_id)
        await repo.audit(
            conn, actor_id=staff_id, actor_kind="staff", action="match.confirm",
            target_id=account_id, request_id=correlation_id.get(),
            details={"rejected_account_ids": sorted(map(str, set(rejected)))},
        )


# -- the duplicates queue ---------------------------------------------------------------


async def refresh_duplicates(
    conn: Connection, matcher: Matcher, account_id: uuid.UUID, *, replace: bool
) -> None:
    """Match one account against the rest and queue what may be the same person.

    ``replace`` (the account changed): its open pairs become what matches now.
    """
    acc = await mrepo.account_for_matching(conn, account_id)
    if acc is None:
        return
    if acc.merged:
        await mrepo.replace_open_pairs(conn, account_id, [])
        return
    digits = (
        matcher.vault.open(acc.ssn_ciphertext, acc.ssn_key_id, acc.id)
        if acc.ssn_ciphertext is not None and acc.ssn_key_id is not None
        else None
    )
    person = Person(acc.first_name, acc.last_name, acc.date_of_birth, digits,
                    idoc_number=acc.idoc_number, email=acc.email)
    exclude = [account_id, *await mrepo.known_different(conn, account_id)]
    found = [
        mrepo.FoundPair(m.candidate.account_id, round(m.probability, 4), m.band or "possible",
                        evidence_of(m))
        for m in await find(conn, matcher, person, exclude=exclude)
    ]
    if replace:
        await mrepo.replace_open_pairs(conn, account_id, found)
    else:
        await mrepo.add_pairs(conn, account_id, found)


async def duplicates(
    pool: asyncpg.Pool, *, limit: int, after: tuple[float, int] | None
) -> list[mrepo.DuplicatePair]:
    async with pool.acquire() as conn:
        return await mrepo.open_pairs(conn, limit=limit, after=after)


class NotOpen(Conflict):
    def __init__(self, reason: str) -> None:
        super().__init__("id", reason)


async def _open_pair(conn: Connection, pair_id: int) -> mrepo.DuplicatePair:
    pair = await mrepo.lock_pair(conn, pair_id)
    if pair is None:
        raise NotFound("duplicate pair not found")
    if pair.status != "open":
        raise NotOpen(f"is already {pair.status}")
    return pair


async def merge(
    pool: asyncpg.Pool, pair_id: int, *, survivor_id: uuid.UUID, staff_id: uuid.UUID
) -> mrepo.DuplicatePair:
    """Keep the survivor, move the other's identifiers to it, disable the other (kept,
    so the merge can be undone)."""
    async with pool.acquire() as conn, conn.transaction():
        pair = await _open_pair(conn, pair_id)
        if survivor_id not in (pair.a.id, pair.b.id):
            raise InvalidInput([FieldError("survivor_id", "must be one of the pair's accounts")])
        merged = pair.b if survivor_id == pair.a.id else pair.a
        await mrepo.lock_accounts(conn, [pair.a.id, pair.b.id])
        if await mrepo.is_merged(conn, survivor_id) or await mrepo.is_merged(conn, merged.id):
            raise NotOpen("one of its accounts was merged into another meanwhile")
        moved = await mrepo.move_identifiers(conn, merged.id, survivor_id)
        await mrepo.mark_merged(conn, merged.id, survivor_id, "disabled")
        await repo.revoke_sessions(conn, merged.id)
        await mrepo.add_merge(conn, pair_id=pair_id, survivor_id=survivor_id,
                              merged_id=merged.id, moved=moved, merged_status=merged.status,
                              by=staff_id)
        await mrepo.set_pair_status(conn, pair_id, "merged", staff_id)
        await repo.audit(
            conn, actor_id=staff_id, actor_kind="staff", action="customer.merge",
            target_id=survivor_id, request_id=correlation_id.get(),
            details={"merged_id": str(merged.id), "pair_id": pair_id,
                     "moved_identifiers": [k for k, _ in moved]},
        )
        await OUTBOX.add(conn, CustomerAccountsMerged(
            survivor_id=survivor_id, merged_id=merged.id, by=staff_id))
        return pair


async def unmerge(pool: asyncpg.Pool, pair_id: int, *, staff_id: uuid.UUID) -> None:
    """Undo a merge: identifiers go back, the merged account has its status again, and
    the pair is open for staff to decide anew."""
    async with pool.acquire() as conn, conn.transaction():
        if await mrepo.lock_pair(conn, pair_id) is None:
            raise NotFound("duplicate pair not found")
        m = await mrepo.merge_in_force(conn, pair_id)
        if m is None:
            raise NotOpen("is not merged")
        await mrepo.lock_accounts(conn, [m.survivor_id, m.merged_id])
        await mrepo.return_identifiers(conn, m.moved_identifiers, m.survivor_id, m.merged_id)
        await mrepo.mark_merged(conn, m.merged_id, None, m.merged_status)
        await mrepo.close_merge(conn, m.id, staff_id)
        await mrepo.set_pair_status(conn, pair_id, "open", None)
        await repo.audit(
            conn, actor_id=staff_id, actor_kind="staff", action="customer.unmerge",
            target_id=m.survivor_id, request_id=correlation_id.get(),
            details={"merged_id": str(m.merged_id), "pair_id": pair_id},
        )
        await OUTBOX.add(conn, CustomerAccountsUnmerged(
            survivor_id=m.survivor_id, merged_id=m.merged_id, by=staff_id))


async def dismiss(pool: asyncpg.Pool, pair_id: int, *, staff_id: uuid.UUID) -> None:
    """Two people after all: off the queue, and never proposed again."""
    async with pool.acquire() as conn, conn.transaction():
        pair = await _open_pair(conn, pair_id)
        await mrepo.set_pair_status(conn, pair_id, "dismissed", staff_id)
        await mrepo.remember_different(conn, pair.a.id, [pair.b.id], staff_id)
        await repo.audit(
            conn, actor_id=staff_id, actor_kind="staff", action="duplicates.dismiss",
            target_id=pair.a.id, request_id=correlation_id.get(),
            details={"other_id": str(pair.b.id), "pair_id": pair_id},
        )
