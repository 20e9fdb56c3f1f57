"""`csc identity import-customers`: rows checked with their line and reason, the
rest loaded with COPY, a re-run creates nothing, no SSN echoed; and the block
index keeps candidate retrieval off sequential scans."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from identity.domain.blocking import query_keys
from identity.domain.records import Person
from identity.repository import matching as mrepo
from identity.service.matcher import Matcher, ssn_lookups
from identity.settings import IdentitySettings
from shared.cli.main import app as csc
from shared.schemas.envelope import Envelope
from tests.integration.identity.conftest import IdentityApp

GOOD_SSN = "219-09-9999"
BAD_SSN = "666-12-3456"

FILE = f"""username,first_name,last_name,date_of_birth,ssn,email
,Marcus,O'Neil,1988-04-12,{GOOD_SSN},
JDoe,Jane,Doe,1990-01-02,,Jane@Example.org
,,Solo,,,
,Bad,Date,1990-13-01,,
,Bad,Ssn,1990-01-01,{BAD_SSN},
,,,,,
jdoe,Other,Person,1970-01-01,,
,Same,Email,1970-01-01,,jane@example.org
,"Multi
Line",Name,1971-01-01,,
,Marcus,O'Neil,1988-04-12,{GOOD_SSN},
"""


def run_import(path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(csc, ["identity", "import-customers", str(path), *extra])
    return result.exit_code, result.stdout, result.stderr


async def test_import_loads_good_rows_reports_bad_ones_and_reruns_to_nothing(
    identity_env: dict[str, str], database: str, tmp_path: Path, pool: asyncpg.Pool,
    identity: IdentityApp,
) -> None:
    path = tmp_path / "legacy.csv"
    path.write_text(FILE, encoding="utf-8")
    code, out, err = await asyncio.to_thread(run_import, path)
    assert code == 0, out + err
    assert "10 rows read: 3 imported, 1 already imported, 6 rejected" in out
    assert err.strip().splitlines() == [
        "line 5: date_of_birth must be a date written YYYY-MM-DD",
        "line 6: ssn is not a number the SSA issues",
        "line 7: first_name a first or a last name is required",
        "line 8: username is taken",
        "line 9: email belongs to another account",
        "line 11: first_name must not contain control characters",  # a quoted newline
    ]
    assert BAD_SSN not in out + err and GOOD_SSN not in out + err

    rows = await pool.fetch(
        "SELECT username, first_name, last_name, source, password_hash, ssn_last4,"
        " cardinality(match_keys) AS keys FROM customers ORDER BY last_name")
    assert [r["last_name"] for r in rows] == ["Doe", "O'Neil", "Solo"]
    assert all(r["source"] == "import" and r["password_hash"] is None for r in rows)
    # block keys for each account with two names (one name alone blocks nothing)
    assert [r["keys"] > 0 for r in rows] == [True, True, False]
    doe = next(r for r in rows if r["last_name"] == "Doe")
    assert doe["username"] == "jdoe"
    assert next(r for r in rows if r["last_name"] == "O'Neil")["ssn_last4"] == "9999"
    assert await pool.fetchval(
        "SELECT count(*) FROM usernames WHERE kind = 'customer'") == 3
    events = [Envelope.from_bytes(r["value"]) for r in await pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'CustomerAccountCreated'")]
    assert len(events) == 3 and all(e.payload["source"] == "import" for e in events)
    solo = next(e for e in events if e.payload["last_name"] == "Solo")
    assert solo.payload["first_name"] is None
    assert all(GOOD_SSN.replace("-", "") not in e.to_bytes().decode() for e in events)

    # an imported account has no password: it cannot sign in until staff reset it
    r = await identity.sign_in("jdoe", "anything at all, long enough")
    assert r.status_code == 401

    # the same file again: nothing new
    code, out, err = await asyncio.to_thread(run_import, path, "--batch-rows", "100")
    assert code == 0
    assert "10 rows read: 0 imported, 4 already imported, 6 rejected" in out
    assert await pool.fetchval("SELECT count(*) FROM customers") == 3


async def test_a_bad_file_is_refused_with_one_line(
    identity_env: dict[str, str], database: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    from identity.app import SPEC
    from shared.servicekit.runtime import migrate_database

    await migrate_database(SPEC, database)
    path = tmp_path / "typo.csv"
    path.write_text("frist_name,last_name\nAnn,Lee\n", encoding="utf-8")
    code, _, err = await asyncio.to_thread(run_import, path)
    assert code == 1
    assert "unknown column 'frist_name'" in err and err.count("\n") == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    code, _, err = await asyncio.to_thread(run_import, empty)
    assert code == 1 and "empty" in err
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("first_name,last_name\nJos\xe9,Lee\n".encode("latin-1"))
    code, _, err = await asyncio.to_thread(run_import, latin)
    assert code == 1 and "UTF-8" in err
    assert await pool.fetchval("SELECT count(*) FROM customers") == 0


# -- no sequential scan ------------------------------------------------------------------

SEED = """
INSERT INTO customers (id, username, first_name, last_name, date_of_birth, source,
                       ssn_lookup, ssn_ciphertext, ssn_key_id, ssn_last4, email, match_keys)
SELECT gen_random_uuid(), 'u' || g, 'F' || g, 'L' || g, date '1950-01-01' + (g % 18000),
       'import', sha256(g::text::bytea), '\\x00', 'k1', lpad((g % 10000)::text, 4, '0'),
       CASE WHEN g % 3 = 0 THEN 'p' || g || '@example.org' END,
       ARRAY[hashtextextended('a' || g, 0), hashtextextended('b' || (g % 50000), 0),
             hashtextextended('c' || (g % 7919), 0)]
FROM generate_series(1, $1::int) AS g
"""


@pytest.mark.slow  # 100,000 rows
async def test_candidate_retrieval_uses_indexes_at_two_million_accounts(
    identity_env: dict[str, str], database: str, pool: asyncpg.Pool
) -> None:
    from identity.app import SPEC
    from shared.servicekit.runtime import migrate_database

    await migrate_database(SPEC, database)
    await pool.execute(SEED, 100_000)
    await pool.execute(
        "INSERT INTO customer_identifiers (account_id, kind, value)"
        " SELECT id, 'idoc_number', 'A' || lpad((row_number() OVER ())::text, 5, '0')"
        " FROM customers LIMIT 50000")
    await pool.execute("ANALYZE")
    # Tell the planner the tables are twenty times bigger, as at 2,000,000 accounts.
    scaled = await pool.fetchval("SELECT current_setting('server_version_num')::int >= 180000")
    if scaled:
        for table, rows in (("customers", 2_000_000), ("customer_identifiers", 1_000_000)):
            pages = await pool.fetchval(
                "SELECT relpages FROM pg_class WHERE relname = $1", table)
            await pool.execute(
                "SELECT pg_restore_relation_stats('schemaname', 'public', 'relname', $1::text,"
                " 'relpages', $2::integer, 'reltuples', $3::real)",
                table, int(pages) * 20, float(rows))

    matcher = Matcher.from_settings(IdentitySettings())
    person = Person("F77", "L77", date(1950, 1, 1), "219099999", idoc_number="A00077",
                    email="p99@example.org")
    args = mrepo.candidate_args(
        query_keys(person.first_name, person.last_name, person.date_of_birth),
        ssn_lookups(matcher.vault, "219099999"), person.idoc_number, person.email,
        [uuid.uuid4()])
    plan = "\n".join(r[0] for r in await pool.fetch("EXPLAIN " + mrepo.CANDIDATES_SQL, *args))
    assert "Seq Scan" not in plan, plan
    assert "customers_match_keys" in plan and "customers_ssn_lookup" in plan, plan
    if not scaled:
        pytest.skip("PostgreSQL < 18: plan checked at 100,000 rows only")
