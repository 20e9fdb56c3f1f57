"""`csc iwds ...` as an operator runs it: summaries and exit codes 0 / 3 / 1."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import asyncpg

from tests.integration.sync_iwds.conftest import person, write_csv, write_staff

CSC = str(Path(sys.executable).parent / "csc")


async def csc(database: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "SYNC_IWDS_DATABASE_URL": database, "CSC_ENV": "test"}
    proc = await asyncio.create_subprocess_exec(
        CSC, "iwds", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_import_confirm_and_exit_codes(database: str, tmp_path: Path) -> None:
    rows = [person(f"P{i}", ssn="123-45-6789") for i in range(40)]
    from sync_iwds.domain import PARTICIPANT_COLUMNS
    full = write_csv(tmp_path / "a.csv", rows, ["ssn", *PARTICIPANT_COLUMNS])
    rc, out, err = await csc(database, "import", "--feed", "participants", str(full))
    assert rc == 0, err
    assert "done: 40 read, 40 added" in out and "6789" not in out + err

    short = write_csv(tmp_path / "b.csv", [*rows[:30], person("", last_name="x")])
    rc, out, err = await csc(database, "import", "--feed", "participants", str(short))
    assert rc == 3 and "held" in out and "10 removed" in out
    assert "line 32: -: missing iwds_person_id" in err
    run_id = re.search(r"run (\S+) held", out)
    assert run_id is not None
    rc, out, _ = await csc(database, "confirm", run_id[1])
    assert rc == 0 and "done" in out
    rc, _, err = await csc(database, "confirm", run_id[1])
    assert rc == 1 and "only a held run" in err
    rc, _, err = await csc(database, "confirm", "not-a-run")
    assert rc == 1 and "not a run id" in err

    bad = write_csv(tmp_path / "c.csv", rows, ["iwds_person_id", "status"])
    rc, out, err = await csc(database, "import", "--feed", "participants", str(bad))
    assert rc == 1 and "refused" in out and "lwia_code" in out

    grants = write_staff(tmp_path / "s.csv", [("S1", "jd", "07", "", "lwia")])
    rc, out, _ = await csc(database, "import", "--feed", "staff-access", "--partial",
                           str(grants))
    assert rc == 0 and "1 added" in out
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM iwds_people") == 30
    finally:
        await conn.close()
