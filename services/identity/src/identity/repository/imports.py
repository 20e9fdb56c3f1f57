"""SQL of bulk customer imports: lookups by batch and COPY. Never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shared.servicekit.db import Connection


async def imported_keys(conn: Connection, keys: Sequence[bytes]) -> set[bytes]:
    rows = await conn.fetch(
        "SELECT import_key FROM customers WHERE import_key = ANY($1::bytea[])", list(keys)
    )
    return {bytes(r["import_key"]) for r in rows}


async def taken_usernames(conn: Connection, usernames: Iterable[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT username_lower FROM usernames WHERE username_lower = ANY($1::text[])",
        [u.lower() for u in usernames],
    )
    return {r["username_lower"] for r in rows}


async def taken_emails(conn: Connection, emails: Iterable[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT lower(email) AS email FROM customers WHERE lower(email) = ANY($1::text[])",
        [e.lower() for e in emails],
    )
    return {r["email"] for r in rows}


CUSTOMER_COLUMNS = (
    "id", "username", "first_name", "last_name", "date_of_birth", "email", "ssn_ciphertext",
    "ssn_key_id", "ssn_lookup", "ssn_last4", "source", "match_keys", "import_key",
)


async def copy_customers(conn: Connection, records: Sequence[tuple[Any, ...]]) -> None:
    """``records`` in CUSTOMER_COLUMNS order; their usernames are claimed alongside."""
    await conn.copy_records_to_table(
        "usernames", columns=("username_lower", "account_id", "kind"),
        records=[(r[1].lower(), r[0], "customer") for r in records],
    )
    await conn.copy_records_to_table("customers", columns=CUSTOMER_COLUMNS, records=records)


async def bulk_session(conn: Connection) -> None:
    """For this transaction: let the match-key GIN index gather a batch's keys in its
    pending list instead of merging them into the index every few thousand rows
    (``settle`` merges them once, at the end)."""
    await conn.execute("SET LOCAL gin_pending_list_limit = '256MB'")
    await conn.execute("SET LOCAL work_mem = '256MB'")


async def settle(conn: Connection) -> None:
    """After a bulk load: merge the GIN index's pending list (until then every match
    scans it) and refresh the planner's statistics."""
    await conn.execute("SELECT gin_clean_pending_list('customers_match_keys'::regclass)")
    await conn.execute("ANALYZE customers")
