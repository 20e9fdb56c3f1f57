"""SQL of person matching: candidate retrieval, remembered decisions, the duplicates
queue and merges. Functions take a connection and never commit. JSON goes in and
out as text (``::text`` casts), whatever codecs the pool's connections have."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from identity.domain.records import Candidate, Person

if TYPE_CHECKING:
    from identity.domain.blocking import SsnRelation
from shared.servicekit.db import Connection

# More candidates than this from one query means a block key collided with a very
# common one: the rest would only be scored to be dropped.
CANDIDATE_CAP = 500
# Rows taken from the names-alone blocks (``blocking.broad_query_keys``), and as many
# from the one-name-and-birthday blocks (``blocking.birthday_query_keys``): all of them
# for a rare name pair, a bounded read for a common one. More when the query has no
# date of birth (then the names are all there is).
BROAD_CAP = 20
BROAD_CAP_NO_DOB = 100

# Each block is an index: GIN over match_keys, btree over ssn_lookup, the
# identifiers' primary key, the email's unique index. No sequential scan. Each
# branch reads the columns it needs, so an account's row is fetched once.
CANDIDATES_SQL = """
SELECT DISTINCT ON (c.id) c.id, c.username, c.first_name, c.last_name, c.date_of_birth,
       c.email, c.ssn_last4, c.ssn_lookup,
       -- a query without an IDOC number compares none: no probe per candidate then
       CASE WHEN $3::text IS NOT NULL THEN
       (SELECT i.value FROM customer_identifiers i
         WHERE i.account_id = c.id AND i.kind = 'idoc_number'
         ORDER BY i.value = $3 DESC, i.value LIMIT 1) END AS idoc_number
FROM (
    SELECT id, username, first_name, last_name, date_of_birth, email, ssn_last4, ssn_lookup,
           merged_into FROM customers WHERE match_keys && $1::bigint[]
    UNION ALL
    SELECT id, username, first_name, last_name, date_of_birth, email, ssn_last4, ssn_lookup,
           merged_into FROM customers WHERE ssn_lookup = ANY($2::bytea[])
    UNION ALL
    SELECT x.id, x.username, x.first_name, x.last_name, x.date_of_birth, x.email,
           x.ssn_last4, x.ssn_lookup, x.merged_into
    FROM customer_identifiers i JOIN customers x ON x.id = i.account_id
    WHERE i.kind = 'idoc_number' AND i.value = $3
    UNION ALL
    SELECT id, username, first_name, last_name, date_of_birth, email, ssn_last4, ssn_lookup,
           merged_into FROM customers WHERE lower(email) = $4
    UNION ALL
    (SELECT id, username, first_name, last_name, date_of_birth, email, ssn_last4, ssn_lookup,
            merged_into FROM customers WHERE match_keys && $7::bigint[] LIMIT $8)
    UNION ALL
    (SELECT id, username, first_name, last_name, date_of_birth, email, ssn_last4, ssn_lookup,
            merged_into FROM customers WHERE match_keys && $9::bigint[] LIMIT $8)
) c
WHERE c.merged_into IS NULL AND c.id <> ALL($5::uuid[])
ORDER BY c.id
LIMIT $6
"""


def _person(r: asyncpg.Record) -> Person:
    return Person(
        first_name=r["first_name"],
        last_name=r["last_name"],
        date_of_birth=r["date_of_birth"],
        ssn_last4=r["ssn_last4"],
        idoc_number=r["idoc_number"],
        email=r["email"],
    )


def candidate_args(
    keys: Sequence[int], ssn_lookups: Mapping[bytes, SsnRelation], idoc_number: str | None,
    email: str | None, exclude: Sequence[UUID], broad_keys: Sequence[int] = (),
    broad_cap: int = BROAD_CAP, birthday_keys: Sequence[int] = (),
) -> tuple[Any, ...]:
    """The parameters of CANDIDATES_SQL (apart, so a test can EXPLAIN the query)."""
    return (list(keys), list(ssn_lookups), idoc_number, email.lower() if email else None,
            list(exclude), CANDIDATE_CAP, list(broad_keys), broad_cap, list(birthday_keys))


@asynccontextmanager
async def indexes_only(conn: Connection) -> AsyncIterator[None]:
    """The capped branches end in ``LIMIT``: with a common key's statistics (or a
    generic plan's guess) a sequential scan that stops after a few rows looks cheaper
    to the planner than the index, and for a key nobody has it reads every account.
    The candidate query is planned with sequential scans off, for its own
    transaction (or savepoint's span) only, and the setting put back."""
    if conn.is_in_transaction():
        before = await conn.fetchval(  # the select list is evaluated left to right
            "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
        try:
            yield
        finally:
            await conn.execute("SELECT set_config('enable_seqscan', $1, true)", before)
        return
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        yield


async def candidates(
    conn: Connection,
    *,
    keys: Sequence[int],
    ssn_lookups: Mapping[bytes, SsnRelation],
    idoc_number: str | None,
    email: str | None,
    exclude: Sequence[UUID] = (),
    query_has_ssn: bool = False,
    broad_keys: Sequence[int] = (),
    broad_cap: int = BROAD_CAP,
    birthday_keys: Sequence[int] = (),
) -> list[Candidate]:
    """Accounts sharing any block with the query (at most ``broad_cap`` of them from
    ``broad_keys``), with their SSN relation set from the keyed lookups (the full SSN
    is never read back)."""
    args = candidate_args(keys, ssn_lookups, idoc_number, email, exclude, broad_keys,
                          broad_cap, birthday_keys)
    async with indexes_only(conn):
        rows = await conn.fetch(CANDIDATES_SQL, *args)
    out = []
    for r in rows:
        lookup = r["ssn_lookup"]
        relation: SsnRelation | None = None
        if lookup is not None and query_has_ssn:
            relation = ssn_lookups.get(bytes(lookup), "different")
        out.append(Candidate(r["id"], _person(r), relation, r["username"]))
    return out


@dataclass(frozen=True)
class AccountForMatching:
    """An account as the duplicates queue compares it; the sealed SSN stays sealed here."""

    id: UUID
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    idoc_number: str | None
    ssn_ciphertext: bytes | None
    ssn_key_id: str | None
    merged: bool


async def account_for_matching(conn: Connection, account_id: UUID) -> AccountForMatching | None:
    r = await conn.fetchrow(
        "SELECT c.id, c.first_name, c.last_name, c.date_of_birth, c.email, c.ssn_ciphertext,"
        " c.ssn_key_id, c.merged_into IS NOT NULL AS merged,"
        " (SELECT i.value FROM customer_identifiers i WHERE i.account_id = c.id"
        "   AND i.kind = 'idoc_number' ORDER BY i.value LIMIT 1) AS idoc_number"
        " FROM customers c WHERE c.id = $1",
        account_id,
    )
    if r is None:
        return None
    return AccountForMatching(
        r["id"], r["first_name"], r["last_name"], r["date_of_birth"], r["email"],
        r["idoc_number"], r["ssn_ciphertext"], r["ssn_key_id"], r["merged"],
    )


@dataclass(frozen=True)
class NamesAndBirth:
    id: UUID
    first_name: str | None
    last_name: str | None
    date_of_birth: date | None


async def accounts_after(conn: Connection, after: UUID, limit: int) -> list[NamesAndBirth]:
    rows = await conn.fetch(
        "SELECT id, first_name, last_name, date_of_birth FROM customers WHERE id > $1"
        " ORDER BY id LIMIT $2", after, limit)
    return [NamesAndBirth(r["id"], r["first_name"], r["last_name"], r["date_of_birth"])
            for r in rows]


async def set_many_match_keys(conn: Connection, keys: Sequence[tuple[UUID, Sequence[int]]]
                              ) -> None:
    await conn.executemany("UPDATE customers SET match_keys = $2 WHERE id = $1",
                           [(i, list(k)) for i, k in keys])


async def set_match_keys(conn: Connection, account_id: UUID, keys: Sequence[int]) -> None:
    await conn.execute("UPDATE customers SET match_keys = $2 WHERE id = $1", account_id, list(keys))


# -- remembered decisions ------------------------------------------------------------


def _pair(a: UUID, b: UUID) -> tuple[UUID, UUID]:
    return (a, b) if a < b else (b, a)


async def remember_different(
    conn: Connection, account_id: UUID, others: Sequence[UUID], decided_by: UUID | None
) -> int:
    """Record each (account, other) as two people; ids of no account are ignored."""
    pairs = [_pair(account_id, o) for o in others if o != account_id]
    if not pairs:
        return 0
    result = await conn.execute(
        "INSERT INTO match_decisions (account_a, account_b, decision, decided_by)"
        " SELECT a, b, 'different', $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(a, b)"
        " WHERE EXISTS (SELECT 1 FROM customers WHERE id = a)"
        "   AND EXISTS (SELECT 1 FROM customers WHERE id = b)"
        " ON CONFLICT DO NOTHING",
        [p[0] for p in pairs], [p[1] for p in pairs], decided_by,
    )
    return int(result.split()[-1])


async def known_different(conn: Connection, account_id: UUID) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT account_b AS other FROM match_decisions WHERE account_a = $1"
        " UNION SELECT account_a FROM match_decisions WHERE account_b = $1",
        account_id,
    )
    return [r["other"] for r in rows]


async def existing_accounts(conn: Connection, ids: Sequence[UUID]) -> set[UUID]:
    rows = await conn.fetch("SELECT id FROM customers WHERE id = ANY($1::uuid[])", list(ids))
    return {r["id"] for r in rows}


# -- the duplicates queue -----------------------------------------------------------------


@dataclass(frozen=True)
class FoundPair:
    other_id: UUID
    score: float
    band: str
    evidence: list[dict[str, Any]]


async def replace_open_pairs(
    conn: Connection, account_id: UUID, found: Sequence[FoundPair]
) -> None:
    """The account's open pairs become exactly ``found`` (updated, added, or gone)."""
    others = [f.other_id for f in found]
    await conn.execute(
        "DELETE FROM duplicate_pairs WHERE status = 'open'"
        " AND (account_a = $1 OR account_b = $1)"
        " AND (CASE WHEN account_a = $1 THEN account_b ELSE account_a END) <> ALL($2::uuid[])",
        account_id, others,
    )
    await add_pairs(conn, account_id, found)


async def add_pairs(conn: Connection, account_id: UUID, found: Sequence[FoundPair]) -> None:
    """Put pairs on the queue; an open pair gets the new score, a decided one is kept."""
    if not found:
        return
    pairs = [_pair(account_id, f.other_id) for f in found]
    await conn.execute(
        "INSERT INTO duplicate_pairs (account_a, account_b, score, band, evidence)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::float8[], $4::text[],"
        "                      $5::text[]::jsonb[])"
        " ON CONFLICT (account_a, account_b) DO UPDATE"
        " SET score = EXCLUDED.score, band = EXCLUDED.band, evidence = EXCLUDED.evidence"
        " WHERE duplicate_pairs.status = 'open'",
        [p[0] for p in pairs], [p[1] for p in pairs], [f.score for f in found],
        [f.band for f in found], [json.dumps(f.evidence) for f in found],
    )


@dataclass(frozen=True)
class PairAccount:
    id: UUID
    username: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    ssn_last4: str | None
    status: str
    identifiers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DuplicatePair:
    id: int
    a: PairAccount
    b: PairAccount
    score: float
    band: str
    evidence: list[dict[str, Any]]
    status: str
    found_at: datetime


_PAIRS = """
SELECT p.id, p.score, p.band, p.evidence::text AS evidence, p.status, p.found_at,
       a.id AS a_id, a.username AS a_username, a.first_name AS a_first_name,
       a.last_name AS a_last_name, a.date_of_birth AS a_date_of_birth,
       a.ssn_last4 AS a_ssn_last4, a.status AS a_status,
       coalesce((SELECT array_agg(ARRAY[i.kind, i.value] ORDER BY i.kind, i.value)
                 FROM customer_identifiers i WHERE i.account_id = a.id), '{}') AS a_ids,
       b.id AS b_id, b.username AS b_username, b.first_name AS b_first_name,
       b.last_name AS b_last_name, b.date_of_birth AS b_date_of_birth,
       b.ssn_last4 AS b_ssn_last4, b.status AS b_status,
       coalesce((SELECT array_agg(ARRAY[i.kind, i.value] ORDER BY i.kind, i.value)
                 FROM customer_identifiers i WHERE i.account_id = b.id), '{}') AS b_ids
FROM duplicate_pairs p
JOIN customers a ON a.id = p.account_a
JOIN customers b ON b.id = p.account_b
"""


def _pair_account(r: asyncpg.Record, alias: str) -> PairAccount:
    return PairAccount(
        r[f"{alias}_id"], r[f"{alias}_username"], r[f"{alias}_first_name"],
        r[f"{alias}_last_name"], r[f"{alias}_date_of_birth"], r[f"{alias}_ssn_last4"],
        r[f"{alias}_status"], tuple((k, v) for k, v in r[f"{alias}_ids"]),
    )


def _duplicate_pair(r: asyncpg.Record) -> DuplicatePair:
    return DuplicatePair(
        r["id"], _pair_account(r, "a"), _pair_account(r, "b"), r["score"], r["band"],
        json.loads(r["evidence"]), r["status"], r["found_at"],
    )


async def open_pairs(
    conn: Connection, *, limit: int, after: tuple[float, int] | None
) -> list[DuplicatePair]:
    """Open pairs of two unmerged accounts, best first, keyset-paged by (score, id)."""
    score, last_id = after if after else (None, None)
    rows = await conn.fetch(
        _PAIRS + " WHERE p.status = 'open' AND a.merged_into IS NULL AND b.merged_into IS NULL"
        " AND ($1::float8 IS NULL OR (p.score, -p.id) < ($1, -$2::bigint))"
        " ORDER BY p.score DESC, p.id LIMIT $3",
        score, last_id, limit,
    )
    return [_duplicate_pair(r) for r in rows]


async def lock_pair(conn: Connection, pair_id: int) -> DuplicatePair | None:
    found = await conn.fetchval(
        "SELECT id FROM duplicate_pairs WHERE id = $1 FOR UPDATE", pair_id
    )
    if found is None:
        return None
    r = await conn.fetchrow(_PAIRS + " WHERE p.id = $1", pair_id)
    return _duplicate_pair(r) if r else None


async def set_pair_status(
    conn: Connection, pair_id: int, status: str, by: UUID | None
) -> None:
    await conn.execute(
        "UPDATE duplicate_pairs SET status = $2, resolved_by = $3,"
        " resolved_at = CASE WHEN $2 = 'open' THEN NULL ELSE now() END WHERE id = $1",
        pair_id, status, by,
    )


# -- merges -------------------------------------------------------------------------------


async def lock_accounts(conn: Connection, ids: Sequence[UUID]) -> None:
    """Lock both accounts of a merge in one order, so two merges cannot deadlock."""
    await conn.execute(
        "SELECT id FROM customers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", list(ids)
    )


async def move_identifiers(conn: Connection, from_id: UUID, to_id: UUID) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "UPDATE customer_identifiers SET account_id = $2 WHERE account_id = $1"
        " RETURNING kind, value",
        from_id, to_id,
    )
    return sorted((r["kind"], r["value"]) for r in rows)


async def return_identifiers(
    conn: Connection, identifiers: Sequence[tuple[str, str]], from_id: UUID, to_id: UUID
) -> None:
    await conn.execute(
        "UPDATE customer_identifiers SET account_id = $4 WHERE account_id = $3"
        " AND (kind, value) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [k for k, _ in identifiers], [v for _, v in identifiers], from_id, to_id,
    )


async def mark_merged(
    conn: Connection, merged_id: UUID, survivor_id: UUID | None, status: str
) -> None:
    await conn.execute(
        "UPDATE customers SET merged_into = $2, status = $3, updated_at = now() WHERE id = $1",
        merged_id, survivor_id, status,
    )


@dataclass(frozen=True)
class Merge:
    id: int
    pair_id: int
    survivor_id: UUID
    merged_id: UUID
    moved_identifiers: list[tuple[str, str]]
    merged_status: str


async def add_merge(
    conn: Connection, *, pair_id: int, survivor_id: UUID, merged_id: UUID,
    moved: Sequence[tuple[str, str]], merged_status: str, by: UUID,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO merges (pair_id, survivor_id, merged_id, moved_identifiers,"
            " merged_status, merged_by) VALUES ($1, $2, $3, $4::text::jsonb, $5, $6) RETURNING id",
            pair_id, survivor_id, merged_id, json.dumps([list(p) for p in moved]),
            merged_status, by,
        )
    )


async def merge_in_force(conn: Connection, pair_id: int) -> Merge | None:
    r = await conn.fetchrow(
        "SELECT id, pair_id, survivor_id, merged_id, moved_identifiers::text AS moved,"
        " merged_status"
        " FROM merges WHERE pair_id = $1 AND unmerged_at IS NULL FOR UPDATE",
        pair_id,
    )
    return _merge(r)


async def merge_of(conn: Connection, merged_id: UUID) -> Merge | None:
    """The merge in force that made ``merged_id`` part of another account, if any."""
    return _merge(await conn.fetchrow(
        "SELECT id, pair_id, survivor_id, merged_id, moved_identifiers::text AS moved,"
        " merged_status FROM merges WHERE merged_id = $1 AND unmerged_at IS NULL",
        merged_id,
    ))


def _merge(r: asyncpg.Record | None) -> Merge | None:
    if r is None:
        return None
    moved = [(k, v) for k, v in json.loads(r["moved"])]
    return Merge(r["id"], r["pair_id"], r["survivor_id"], r["merged_id"], moved,
                 r["merged_status"])


async def close_merge(conn: Connection, merge_id: int, by: UUID) -> None:
    await conn.execute(
        "UPDATE merges SET unmerged_by = $2, unmerged_at = now() WHERE id = $1", merge_id, by
    )


async def is_merged(conn: Connection, account_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT merged_into IS NOT NULL FROM customers WHERE id = $1", account_id
        )
    )


# -- fitted weights -------------------------------------------------------------------------


async def latest_weights_id(conn: Connection) -> int | None:
    value = await conn.fetchval("SELECT max(id) FROM match_weights")
    return int(value) if value is not None else None


async def weights_json(conn: Connection, weights_id: int) -> str | None:
    value = await conn.fetchval(
        "SELECT weights::text FROM match_weights WHERE id = $1", weights_id)
    return str(value) if value is not None else None


async def save_weights(conn: Connection, weights_json_text: str) -> int:
    return int(await conn.fetchval(
        "INSERT INTO match_weights (weights) VALUES ($1::text::jsonb) RETURNING id",
        weights_json_text))


async def sample_accounts(conn: Connection, n: int) -> list[AccountForMatching]:
    """``n`` accounts picked at random (an operator's command: a scan is fine here)."""
    rows = await conn.fetch(
        "SELECT c.id, c.first_name, c.last_name, c.date_of_birth, c.email, c.ssn_ciphertext,"
        " c.ssn_key_id, false AS merged, NULL::text AS idoc_number"
        " FROM customers c WHERE c.merged_into IS NULL ORDER BY random() LIMIT $1", n)
    return [AccountForMatching(
        r["id"], r["first_name"], r["last_name"], r["date_of_birth"], r["email"],
        r["idoc_number"], r["ssn_ciphertext"], r["ssn_key_id"], r["merged"]) for r in rows]


async def name_counts(conn: Connection) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """How many unmerged accounts have each first name and each last name, as stored."""
    firsts = await conn.fetch(
        "SELECT first_name, count(*) AS n FROM customers WHERE merged_into IS NULL"
        " GROUP BY first_name")
    lasts = await conn.fetch(
        "SELECT last_name, count(*) AS n FROM customers WHERE merged_into IS NULL"
        " GROUP BY last_name")
    return ([(r["first_name"], int(r["n"])) for r in firsts],
            [(r["last_name"], int(r["n"])) for r in lasts])
