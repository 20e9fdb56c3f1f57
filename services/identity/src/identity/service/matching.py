"""Use cases of person matching: search with evidence, staff decisions, the
duplicates queue (fed by each account's own events), merge and unmerge."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

import asyncpg

from identity.domain.accounts import FieldError, InvalidInput, MatchFields
from identity.domain.blocking import (
    index_keys,
    normalize_name,
)
from identity.domain.matching import Match, comparison_vector
from identity.domain.matching_weights import Vector, Weights, fit_weights
from identity.domain.records import Candidate, Person
from identity.repository import accounts as repo
from identity.repository import matching as mrepo
from identity.repository.outbox import OUTBOX
from identity.service.common import end_sessions
from identity.service.matcher import (
    Matcher,
    candidates_for,
    evidence_of,
    find,
    forget_loaded_weights,
    person_of,
)
from shared.schemas.identity import CustomerAccountsMerged, CustomerAccountsUnmerged
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, NotFound
from shared.servicekit.logs import correlation_id

# -- fitting the weights -----------------------------------------------------------------


async def candidate_vectors(
    conn: Connection, matcher: Matcher, people: Iterable[tuple[Person, Sequence[uuid.UUID]]]
) -> list[Vector]:
    """The comparison outcomes of each person with each account its blocks bring."""
    out: list[Vector] = []
    for person, exclude in people:
        for cand in await candidates_for(conn, matcher, person, exclude=exclude):
            out.append(comparison_vector(person, cand))
    return out


def random_vectors(people: Sequence[Person], pairs: int, rng: random.Random) -> list[Vector]:
    """The comparison outcomes of ``pairs`` random pairs of ``people``."""
    out: list[Vector] = []
    if len(people) < 2:
        return out
    for _ in range(pairs):
        a, b = rng.sample(range(len(people)), 2)
        out.append(comparison_vector(people[a], Candidate(uuid.UUID(int=b), people[b])))
    return out


async def normalised_name_counts(conn: Connection) -> tuple[Counter[str], Counter[str]]:
    firsts, lasts = await mrepo.name_counts(conn)
    fc: Counter[str] = Counter()
    lc: Counter[str] = Counter()
    for raw, n in firsts:
        fc[normalize_name(raw).full] += n
    for raw, n in lasts:
        lc[normalize_name(raw).full] += n
    return fc, lc


async def fit_from_accounts(
    pool: asyncpg.Pool, matcher: Matcher, *, sample: int = 5_000,
    random_pairs: int = 200_000, seed: int | None = None,
) -> Weights:
    """Weights estimated from the accounts: ``sample`` accounts matched against the rest
    give the candidate pairs (EM), random pairs of them give u, every account's name
    gives the name frequencies. Nothing is written (see ``save_weights``)."""
    rng = random.Random(seed)
    async with pool.acquire() as conn:
        accounts = await mrepo.sample_accounts(conn, sample)
        people = [_person_of_account(matcher, a) for a in accounts]
        cand = await candidate_vectors(
            conn, matcher, [(p, [a.id]) for p, a in zip(people, accounts, strict=True)])
        fc, lc = await normalised_name_counts(conn)
        total = await conn.fetchval("SELECT count(*) FROM customers WHERE merged_into IS NULL")
    return fit_weights(cand, random_vectors(people, random_pairs, rng), fc, lc, int(total),
                       fitted_at=datetime.now(UTC).isoformat(timespec="seconds"))


def _person_of_account(matcher: Matcher, acc: mrepo.AccountForMatching) -> Person:
    digits = (
        matcher.vault.open(acc.ssn_ciphertext, acc.ssn_key_id, acc.id)
        if acc.ssn_ciphertext is not None and acc.ssn_key_id is not None else None
    )
    return Person(acc.first_name, acc.last_name, acc.date_of_birth, digits,
                  idoc_number=acc.idoc_number, email=acc.email)


async def rekey_accounts(pool: asyncpg.Pool, *, batch: int = 2_000) -> int:
    """Recompute every account's block keys (``blocking.index_keys``), in batches."""
    done, after = 0, uuid.UUID(int=0)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await mrepo.accounts_after(conn, after, batch)
            if not rows:
                return done
            await mrepo.set_many_match_keys(conn, [
                (r.id, index_keys(r.first_name, r.last_name, r.date_of_birth)) for r in rows])
        done += len(rows)
        after = rows[-1].id


async def save_weights(pool: asyncpg.Pool, weights: Weights) -> int:
    """Write the weights; every process scores with them within a minute."""
    async with pool.acquire() as conn:
        weights_id = await mrepo.save_weights(conn, json.dumps(weights.to_json()))
    forget_loaded_weights()
    return weights_id


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
    actor_kind: Literal["staff", "client"] = "staff",
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
            conn, actor_id=staff_id, actor_kind=actor_kind, action="match.search",
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


# The duplicates queue holds what may be one person; a weak candidate is shown to staff
# who are looking for a person (search, Add Customer) but does not queue a pair: every
# second "John Smith" would.
QUEUED_BANDS = frozenset({"strong", "possible"})


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
        if m.band in QUEUED_BANDS
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
        await end_sessions(conn, merged.id, "merged")
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
        # the survivor was merged on into another account since: what moved to it (the
        # merged account's identifiers) sits on that account now. Undo that merge first.
        later = await mrepo.merge_of(conn, m.survivor_id)
        if later is not None:
            raise Conflict(
                None, f"account {m.survivor_id} was merged into {later.survivor_id} after this "
                f"merge: undo that merge (duplicate pair {later.pair_id}) first",
                code="later-merge-in-force", later_pair_id=later.pair_id)
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
