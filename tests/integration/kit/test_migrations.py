"""The migration runner against a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.servicekit.db import _LOCK_KEY, KIT_MIGRATIONS, MigrationError, migrate

CREATE = "CREATE TABLE widget (id integer PRIMARY KEY, name text NOT NULL);\n"
ADD_COLUMN = "ALTER TABLE widget ADD COLUMN colour text;\n"
SEED = "INSERT INTO widget (id, name, colour) VALUES (1, 'first', 'red');\n"


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    yield c
    await c.close()


async def recorded(conn: asyncpg.Connection, namespace: str = "demo") -> list[tuple[int, str, str]]:
    rows = await conn.fetch(
        "SELECT version, name, checksum FROM schema_migrations"
        " WHERE namespace = $1 ORDER BY version", namespace,
    )
    return [(r["version"], r["name"], r["checksum"]) for r in rows]


async def table_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_applies_in_order_and_records_checksums(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # Written out of order; 0002 and 0010 fail unless run after 0001.
    d = write(tmp_path / "m", {
        "0010_seed.sql": SEED,
        "0001_create.sql": CREATE,
        "0002_add_colour.sql": ADD_COLUMN,
        "README.md": "not a migration",
    })
    applied = await migrate(conn, [("demo", d)])
    assert applied == ["demo/0001_create.sql", "demo/0002_add_colour.sql", "demo/0010_seed.sql"]
    assert await recorded(conn) == [
        (1, "0001_create.sql", sha(CREATE)),
        (2, "0002_add_colour.sql", sha(ADD_COLUMN)),
        (10, "0010_seed.sql", sha(SEED)),
    ]
    assert await conn.fetchval("SELECT colour FROM widget WHERE id = 1") == "red"
    # The kit's own migrations, applied by the fixture, are untouched.
    assert [r[1] for r in await recorded(conn, "kit")] == sorted(
        f.name for f in KIT_MIGRATIONS.glob("*.sql"))


async def test_second_run_applies_nothing_then_only_new_files(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    d = write(tmp_path / "m", {"0001_create.sql": CREATE, "0002_add_colour.sql": ADD_COLUMN})
    assert len(await migrate(conn, [("demo", d)])) == 2
    before = await recorded(conn)
    assert await migrate(conn, [("demo", d)]) == []
    assert await recorded(conn) == before

    write(d, {"0003_seed.sql": SEED})
    assert await migrate(conn, [("demo", d)]) == ["demo/0003_seed.sql"]
    assert await conn.fetchval("SELECT count(*) FROM widget") == 1


async def test_namespaces_are_independent(conn: asyncpg.Connection, tmp_path: Path) -> None:
    a = write(tmp_path / "a", {"0001_create.sql": CREATE})
    b = write(tmp_path / "b", {"0001_other.sql": "CREATE TABLE other (id integer);"})
    applied = await migrate(conn, [("alpha", a), ("beta", b)])
    assert applied == ["alpha/0001_create.sql", "beta/0001_other.sql"]
    assert await table_exists(conn, "widget") and await table_exists(conn, "other")


async def test_edited_applied_file_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {"0001_create.sql": CREATE, "0002_add_colour.sql": ADD_COLUMN})
    await migrate(conn, [("demo", d)])
    write(d, {
        "0002_add_colour.sql": ADD_COLUMN + "-- a harmless-looking comment\n",
        "0003_seed.sql": SEED,
    })
    with pytest.raises(MigrationError, match=r"demo/0002_add_colour\.sql.*edited"):
        await migrate(conn, [("demo", d)])
    # Nothing new ran alongside the edited file.
    assert [r[0] for r in await recorded(conn)] == [1, 2]
    assert await conn.fetchval("SELECT count(*) FROM widget") == 0


async def test_edit_is_found_before_new_files_run(conn: asyncpg.Connection, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {"0001_create.sql": CREATE, "0003_add_colour.sql": ADD_COLUMN})
    await migrate(conn, [("demo", d)])
    # A branch merged 0002 below the applied 0003, and 0003 was edited since.
    write(d, {
        "0002_other.sql": "CREATE TABLE other (id integer);\n",
        "0003_add_colour.sql": ADD_COLUMN.replace("text", "varchar(20)"),
    })
    with pytest.raises(MigrationError, match=r"demo/0003_add_colour\.sql"):
        await migrate(conn, [("demo", d)])
    assert [r[0] for r in await recorded(conn)] == [1, 3]
    assert not await table_exists(conn, "other")


@pytest.mark.parametrize(
    "bad_name",
    ["1_create.sql", "0001-create.sql", "0001_Create.sql", "create.sql", "00001_x.sql",
     "0001_.sql", "0001_create.SQL", "0001_create table.sql"],
)
async def test_badly_named_file_is_refused(
    conn: asyncpg.Connection, tmp_path: Path, bad_name: str
) -> None:
    d = write(tmp_path / "m", {"0001_create.sql": CREATE, bad_name: "SELECT 1;"})
    with pytest.raises(MigrationError, match=r"NNNN_what\.sql") as caught:
        await migrate(conn, [("demo", d)])
    assert bad_name in str(caught.value)
    assert await recorded(conn) == []
    assert not await table_exists(conn, "widget")


async def test_two_files_with_one_number_are_refused(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    d = write(tmp_path / "m", {"0001_create.sql": CREATE, "0001_again.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="share a number"):
        await migrate(conn, [("demo", d)])
    assert await recorded(conn) == []


async def test_missing_directory_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no such migrations directory"):
        await migrate(conn, [("demo", tmp_path / "typo")])


async def test_failing_file_rolls_back_and_earlier_files_stay(
    conn: asyncpg.Connection, tmp_path: Path, database: str
) -> None:
    broken = (
        "CREATE TABLE half (id integer PRIMARY KEY);\n"
        "INSERT INTO half VALUES (1);\n"
        "INSERT INTO widget (id, name) VALUES (1, NULL);\n"  # violates NOT NULL
    )
    d = write(tmp_path / "m", {
        "0001_create.sql": CREATE, "0002_half.sql": broken, "0003_add_colour.sql": ADD_COLUMN,
    })
    with pytest.raises(MigrationError, match=r"demo/0002_half\.sql") as caught:
        await migrate(conn, [("demo", d)])
    assert isinstance(caught.value.__cause__, asyncpg.NotNullViolationError)
    assert [r[1] for r in await recorded(conn)] == ["0001_create.sql"]
    assert await table_exists(conn, "widget")
    assert not await table_exists(conn, "half")
    assert await conn.fetchval("SELECT count(*) FROM widget") == 0
    colour = await conn.fetchval(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'widget' AND column_name = 'colour'"
    )
    assert colour == 0  # 0003 never ran

    # The lock was released: another session can take it at once.
    other = await asyncpg.connect(database)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY) is True
        await other.fetchval("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await other.close()

    # A file that never applied may still be fixed; the run resumes after 0001.
    write(d, {"0002_half.sql": broken.replace("NULL", "'ok'")})
    assert await migrate(conn, [("demo", d)]) == ["demo/0002_half.sql", "demo/0003_add_colour.sql"]
    assert await conn.fetchval("SELECT count(*) FROM half") == 1


async def test_concurrent_runs_apply_each_file_once(database: str, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {
        "0001_counter.sql": "SELECT pg_sleep(0.3);\nCREATE TABLE applied (file text NOT NULL);\n",
        "0002_once.sql": "INSERT INTO applied VALUES ('0002');\n",
        "0003_once_more.sql": "SELECT pg_sleep(0.2);\nINSERT INTO applied VALUES ('0003');\n",
    })
    conns = [await asyncpg.connect(database) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, [("demo", d)]) for c in conns))
        applied = sorted(name for result in results for name in result)
        assert applied == ["demo/0001_counter.sql", "demo/0002_once.sql", "demo/0003_once_more.sql"]
        assert sorted(len(r) for r in results) == [0, 0, 3]  # one runner did it all
        rows = await conns[0].fetch("SELECT file FROM applied ORDER BY file")
        assert [r["file"] for r in rows] == ["0002", "0003"]
        assert len(await recorded(conns[0])) == 3
    finally:
        for c in conns:
            await c.close()
