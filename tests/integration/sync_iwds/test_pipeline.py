"""The pipeline on a real database: diff, events, reruns, held runs, bad input."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.servicekit.audit import Actor
from shared.servicekit.errors import Conflict
from sync_iwds import service
from sync_iwds.deps import Deps
from tests.integration.sync_iwds.conftest import (
    clear_outbox,
    events,
    person,
    write_csv,
    write_staff,
)

ADMIN = Actor(uuid.uuid4(), "staff")


async def load(pool: asyncpg.Pool, deps: Deps, path: Path, *, feed: str = "participants",
               mode: str = "full") -> service.Run:
    return await service.import_file(pool, deps, feed=feed, mode=mode,  # type: ignore[arg-type]
                                     path=path)


async def test_first_load_then_delta_then_same_file(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    first = [person(f"P{i}") for i in range(250)]
    run = await load(iwds_pool, deps, write_csv(tmp_path / "a.csv", first))
    assert run.status == "done" and run.counts.added == 250 and run.counts.read == 250
    assert run.counts.unlinked == 250  # none carries a worknet_account_id
    assert len(await events(iwds_pool, "IwdsRecordUpdated")) == 250
    [done] = await events(iwds_pool, "IwdsSyncCompleted")
    assert done["counts"]["added"] == 250 and done["kind"] == "nightly"

    await clear_outbox(iwds_pool)
    acct = uuid.uuid4()
    second = [p for p in first if p["iwds_person_id"] not in ("P0", "P1")]  # 2 removed
    second[0] = person(second[0]["iwds_person_id"], office_code="OF2",
                       updated_at="2026-11-02T10:00:00+00:00")
    second[1] = person(second[1]["iwds_person_id"], worknet_account_id=str(acct))
    second += [person("N1"), person("N2"), person("N3")]
    path2 = write_csv(tmp_path / "b.csv", second)
    run = await load(iwds_pool, deps, path2)
    assert run.status == "done"
    c = run.counts
    assert (c.added, c.changed, c.removed, c.unchanged) == (3, 2, 2, 246)
    updated = {e["iwds_person_id"]: e for e in await events(iwds_pool, "IwdsRecordUpdated")}
    assert set(updated) == {"N1", "N2", "N3", "P2", "P3"}
    assert updated["P2"]["office_code"] == "OF2" and updated["P3"]["account_id"] == str(acct)
    removed = await events(iwds_pool, "IwdsRecordRemoved")
    assert sorted(e["iwds_person_id"] for e in removed) == ["P0", "P1"]
    assert removed[0]["lwia_code"] == "07"

    await clear_outbox(iwds_pool)
    run = await load(iwds_pool, deps, path2)
    assert run.status == "done" and run.counts.unchanged == len(second)
    assert [e["type"] for e in await events(iwds_pool)] == ["IwdsSyncCompleted"]
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_stage_people") == 0


async def test_truncated_file_is_held_then_confirmed_or_discarded(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    rows = [person(f"P{i}") for i in range(100)]
    await load(iwds_pool, deps, write_csv(tmp_path / "a.csv", rows))
    await clear_outbox(iwds_pool)
    truncated = write_csv(tmp_path / "t.csv", rows[:90])  # 10 % gone > 5 %
    held = await load(iwds_pool, deps, truncated)
    assert held.status == "held" and held.counts.removed == 10 and "confirm" in (held.message or "")
    assert await events(iwds_pool) == []
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_people") == 100

    other = await load(iwds_pool, deps, truncated)
    discarded = await service.discard(iwds_pool, deps, other.id, ADMIN)
    assert discarded.status == "discarded"
    with pytest.raises(Conflict):
        await service.confirm(iwds_pool, deps, other.id, ADMIN)

    done = await service.confirm(iwds_pool, deps, held.id, ADMIN)
    assert done.status == "done" and done.counts.removed == 10
    assert len(await events(iwds_pool, "IwdsRecordRemoved")) == 10
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_people") == 90
    assert await iwds_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action LIKE 'iwds.run.%'") == 2
    # 4 of 90 (4.4 %) is under the share: applied at once
    again = await load(iwds_pool, deps, write_csv(tmp_path / "f.csv", rows[:86]))
    assert again.status == "done" and again.counts.removed == 4


async def test_bad_rows_are_kept_and_good_rows_applied(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    rows = [person("P1"), person("", last_name="x"), person("P2", date_of_birth="1990-02-30"),
            person("P3", status="asleep"), person("P1"), person("P4")]
    run = await load(iwds_pool, deps, write_csv(tmp_path / "a.csv", rows))
    assert run.status == "done" and run.counts.added == 2 and run.counts.rejected == 4
    got = await iwds_pool.fetch("SELECT line, iwds_id, reason FROM iwds_rejected ORDER BY line")
    assert [(r["line"], r["iwds_id"]) for r in got] == [(3, ""), (4, "P2"), (5, "P3"), (6, "P1")]
    assert "missing iwds_person_id" in got[0]["reason"]
    assert "bad date_of_birth" in got[1]["reason"] and "unknown status" in got[2]["reason"]
    assert "duplicate" in got[3]["reason"]


async def test_bad_header_refuses_the_file(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    cols = ["iwds_person_id", "lwia_code", "status", "updated_at"]
    run = await load(iwds_pool, deps, write_csv(tmp_path / "a.csv", [person("P1")], cols))
    assert run.status == "refused" and "office_code" in (run.message or "")
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_people") == 0
    assert await events(iwds_pool) == []


async def test_ssn_column_is_never_stored(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from sync_iwds.domain import PARTICIPANT_COLUMNS
    rows = [person("P1", ssn="123-45-6789"), person("P2", ssn="987654321",
                                                    first_name="111-22-3333")]
    run = await load(iwds_pool, deps, write_csv(
        tmp_path / "a.csv", rows, ["ssn", *PARTICIPANT_COLUMNS]))
    assert run.status == "done" and run.counts.added == 2
    dump = ""
    for table in ("iwds_people", "iwds_runs", "iwds_rejected", "outbox", "audit_log"):
        dump += "".join(str(tuple(r)) for r in await iwds_pool.fetch(f"SELECT * FROM {table}"))
    for digits in ("6789", "987654321", "3333"):
        assert digits not in dump
    out = capsys.readouterr()
    assert "6789" not in out.out + out.err and "3333" not in out.out + out.err


async def test_older_updates_are_ignored_and_partial_runs_remove_nothing(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    await load(iwds_pool, deps, write_csv(tmp_path / "a.csv", [person("P1"), person("P2")]))
    await clear_outbox(iwds_pool)
    newer = person("P1", status="exited", exit_date="2026-11-03",
                   updated_at="2026-11-03T00:00:00+00:00")
    older = person("P1", office_code="OLD", updated_at="2026-11-02T00:00:00+00:00")
    r1 = await load(iwds_pool, deps, write_csv(tmp_path / "n.csv", [newer]), mode="partial")
    r2 = await load(iwds_pool, deps, write_csv(tmp_path / "o.csv", [older]), mode="partial")
    assert (r1.counts.changed, r2.counts.changed, r2.counts.unchanged) == (1, 0, 1)
    assert r1.kind == "manual"
    [upd] = await events(iwds_pool, "IwdsRecordUpdated")
    assert upd["status"] == "exited" and upd["exit_date"] == "2026-11-03"
    assert await events(iwds_pool, "IwdsRecordRemoved") == []
    assert await iwds_pool.fetchval(
        "SELECT office_code FROM iwds_people WHERE iwds_person_id = 'P1'") == "OF1"


async def test_staff_access_sets(iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    run = await load(iwds_pool, deps, write_staff(tmp_path / "s.csv", [
        ("S1", "jdoe", "07", "", "lwia"), ("S1", "jdoe", "07", "OF1", "office"),
        ("S2", "asmith", "", "", "statewide")]), feed="staff-access")
    assert run.status == "done" and run.counts.added == 2
    got = {e["iwds_staff_id"]: e for e in await events(iwds_pool, "IwdsStaffAccessUpdated")}
    assert got["S1"]["grants"] == [
        {"level": "lwia", "lwia_code": "07", "office_code": None},
        {"level": "office", "lwia_code": "07", "office_code": "OF1"}]
    assert got["S2"]["worknet_username"] == "asmith"
    await clear_outbox(iwds_pool)
    # same grants in another order: nothing; S2 loses statewide (full extract) -> []
    run = await load(iwds_pool, deps, write_staff(tmp_path / "t.csv", [
        ("S1", "jdoe", "07", "OF1", "office"), ("S1", "jdoe", "7", "", "lwia")]),
        feed="staff-access")
    assert run.status == "held"  # one of two staff members loses everything: 50 %
    run = await service.confirm(iwds_pool, deps, run.id, ADMIN)
    [e] = await events(iwds_pool, "IwdsStaffAccessUpdated")
    assert e["iwds_staff_id"] == "S2" and e["grants"] == []
    assert (run.counts.unchanged, run.counts.removed) == (1, 1)
