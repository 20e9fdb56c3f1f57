"""Bulk import of existing customer accounts (`csc identity import-customers`).

Rows are checked one by one (a bad row is reported with its line and reason and
the rest load), then loaded a batch at a time with COPY in one transaction per
batch, each account with its CustomerAccountCreated event. A row imported before
(the same content, recognised by a keyed fingerprint) is skipped, so re-running
a file creates nothing new. Imported accounts have no password until staff
reset one.
"""

from __future__ import annotations

import csv
import random
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from typing import IO, Any

import asyncpg

from identity.deps import Deps
from identity.domain.accounts import username_candidates
from identity.domain.blocking import index_keys
from identity.domain.imports import ImportRow, RowError, check_columns, import_key, parse_row
from identity.repository import imports as irepo
from identity.repository.outbox import OUTBOX
from shared.schemas.identity import CustomerAccountCreated
from shared.servicekit import audit

BATCH_ROWS = 5_000
_USERNAME_TRIES = 8


class BadFile(ValueError):
    """The file cannot be imported at all (header problems)."""


@dataclass
class ImportSummary:
    read: int = 0
    imported: int = 0
    already_imported: int = 0
    rejected: list[RowError] = field(default_factory=list)


def read_csv(stream: IO[str]) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line number, row) for each data row; BadFile when the header is wrong."""
    reader = csv.DictReader(stream)
    problems = check_columns(reader.fieldnames)
    if problems:
        raise BadFile("; ".join(problems))
    for raw in reader:
        yield reader.line_num, {k.strip(): v for k, v in raw.items() if k is not None}


class _Usernames:
    """Readable usernames for rows that have none, unique in the batch and the table."""

    def __init__(self) -> None:
        self.rng = random.Random(secrets.randbits(64))

    async def assign(self, conn: Any, rows: list[ImportRow], used: set[str]) -> list[str]:
        gens = [username_candidates(r.first_name, r.last_name, self.rng, widen_after=2)
                for r in rows]
        names: list[str | None] = [None] * len(rows)
        pending = list(range(len(rows)))
        for _ in range(_USERNAME_TRIES):
            proposals = {i: next(gens[i]) for i in pending}
            taken = await irepo.taken_usernames(conn, proposals.values())
            pending = []
            for i, name in proposals.items():
                if name in taken or name in used:
                    pending.append(i)
                else:
                    used.add(name)
                    names[i] = name
            if not pending:
                return [n for n in names if n is not None]
        raise RuntimeError("could not find free usernames for every row")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked row with what it costs CPU to make: its fingerprint, the sealed
    SSN (ciphertext, key id, lookup, last four) and its block keys."""

    row: ImportRow
    key: bytes
    account_id: uuid.UUID
    ssn: tuple[bytes, str, bytes, str] | None
    match_keys: list[int]


def prepare(
    chunk: list[tuple[int, dict[str, str | None]]], today: date, ids: Deps
) -> tuple[list[Prepared], list[RowError]]:
    """Check each row and do its per-row crypto and block keys (no I/O)."""
    good: list[Prepared] = []
    errors: list[RowError] = []
    for line, raw in chunk:
        parsed = parse_row(line, raw, today=today)
        if not isinstance(parsed, ImportRow):
            errors.extend(parsed)
            continue
        account_id = uuid.uuid4()
        sealed = ids.vault.seal(parsed.ssn, account_id) if parsed.ssn else None
        good.append(Prepared(
            parsed, import_key(parsed, ids.kek), account_id,
            (sealed.ciphertext, sealed.key_id, sealed.lookup, sealed.last4) if sealed else None,
            index_keys(parsed.first_name, parsed.last_name, parsed.date_of_birth),
        ))
    return good, errors


async def _load_batch(
    conn: Any, rows: list[Prepared], summary: ImportSummary, usernames: _Usernames,
) -> None:
    done = await irepo.imported_keys(conn, [p.key for p in rows])
    emails = await irepo.taken_emails(conn, [p.row.email for p in rows if p.row.email])
    given = await irepo.taken_usernames(conn, [p.row.username for p in rows if p.row.username])
    seen_keys: set[bytes] = set()
    used: set[str] = set()
    accepted: list[Prepared] = []
    for p in rows:
        r = p.row
        if p.key in done or p.key in seen_keys:
            summary.already_imported += 1
            continue
        if r.email and r.email in emails:
            summary.rejected.append(RowError(r.line, "email", "belongs to another account"))
            continue
        if r.username and (r.username in given or r.username in used):
            summary.rejected.append(RowError(r.line, "username", "is taken"))
            continue
        seen_keys.add(p.key)
        if r.email:
            emails.add(r.email)
        if r.username:
            used.add(r.username)
        accepted.append(p)
    if not accepted:
        return
    unnamed = [p.row for p in accepted if p.row.username is None]
    generated = iter(await usernames.assign(conn, unnamed, used))
    records, events = [], []
    for p in accepted:
        r = p.row
        username = r.username or next(generated)
        c, kid, lookup, last4 = p.ssn or (None, None, None, None)
        records.append((p.account_id, username, r.first_name, r.last_name, r.date_of_birth,
                        r.email, c, kid, lookup, last4, "import", p.match_keys, p.key))
        # built from values checked above: no second validation per row
        events.append(CustomerAccountCreated.model_construct(
            account_id=p.account_id, username=username, first_name=r.first_name or None,
            last_name=r.last_name or None, email=r.email, source="import", created_by=None,
            password_change_required=False,
        ))
    await irepo.copy_customers(conn, records)
    await OUTBOX.add_many(conn, events)
    await audit.record(
        conn, audit.Actor.system(), "customer.import", None,
        {"accounts": len(records), "lines": [accepted[0].row.line, accepted[-1].row.line]})
    summary.imported += len(records)


async def import_customers(
    pool: asyncpg.Pool,
    ids: Deps,
    rows: Iterable[tuple[int, dict[str, str | None]]],
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Load ``rows`` (from :func:`read_csv`); one transaction per batch."""
    summary = ImportSummary()
    today = ids.clock.today()
    usernames = _Usernames()
    source = iter(rows)
    while chunk := list(islice(source, batch_rows)):
        summary.read += len(chunk)
        good, errors = prepare(chunk, today, ids)
        summary.rejected.extend(errors)
        if good:
            await _load_with_retry(pool, good, summary, usernames)
        if progress is not None:
            progress(len(chunk))
    if summary.imported:
        async with pool.acquire() as conn:
            await irepo.settle(conn)
    summary.rejected.sort(key=lambda e: e.line)
    return summary


async def _load_with_retry(
    pool: asyncpg.Pool, good: list[Prepared], summary: ImportSummary, usernames: _Usernames
) -> None:
    for attempt in range(3):
        before = (summary.imported, summary.already_imported, len(summary.rejected))
        try:
            async with pool.acquire() as conn, conn.transaction():
                await irepo.bulk_session(conn)
                await _load_batch(conn, good, summary, usernames)
            return
        except asyncpg.UniqueViolationError:
            # another writer took a username or email meanwhile: check again
            summary.imported, summary.already_imported = before[0], before[1]
            del summary.rejected[before[2]:]
            if attempt == 2:
                raise
