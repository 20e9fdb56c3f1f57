"""A merge moves the merged account's records to the survivor (and records that arrive
for the merged account later go there too); the unmerge moves them back."""

from __future__ import annotations

import uuid

from shared.schemas.identity import CustomerAccountsMerged, CustomerAccountsUnmerged
from tests.integration.readiness.conftest import Readiness
from tests.integration.readiness.helpers import assessment, audit_details, module, plan


async def owners(r: Readiness, record_ids: list[str]) -> list[uuid.UUID]:
    """The account holding each record, in the order asked."""
    rows = await r.pool.fetch(
        "SELECT record_id, account_id FROM readiness_records WHERE record_id = ANY($1)",
        record_ids)
    found = {row["record_id"]: row["account_id"] for row in rows}
    return [found[rid] for rid in record_ids]


async def test_a_merge_and_an_unmerge_move_records(readiness: Readiness) -> None:
    r = readiness
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    admin = uuid.uuid4()
    mine = [assessment(merged, "skills"), module(merged), plan(merged)]
    theirs = [assessment(survivor, "work-values")]
    await r.post_feed(mine + theirs)
    mine_ids = sorted(x["record_id"] for x in mine)

    await r.publish(CustomerAccountsMerged(survivor_id=survivor, merged_id=merged, by=admin),
                    producer="identity")
    await r.wait_for("SELECT count(*) = 4 FROM readiness_records WHERE account_id = $1",
                     survivor)
    sid, staff = r.staff()
    r.groups.customers[str(sid)] = {survivor, merged}
    view = (await r.client.get(f"/v1/customers/{survivor}/readiness", headers=staff)).json()
    assert sorted(a["code"] for a in view["assessments"]) == ["skills", "work-values"]
    assert view["employment101"]["plan"] is not None
    # a record that arrives for the merged account afterwards goes to the survivor
    late = assessment(merged, "career-cluster")
    await r.post_feed([late])
    assert await owners(r, [late["record_id"]]) == [survivor]

    await r.publish(CustomerAccountsUnmerged(survivor_id=survivor, merged_id=merged,
                                             by=admin), producer="identity")
    await r.wait_for("SELECT count(*) = 4 FROM readiness_records WHERE account_id = $1",
                     merged)
    assert await owners(r, mine_ids) == [merged] * 3
    assert await owners(r, [theirs[0]["record_id"], late["record_id"]]) == [survivor, merged]
    view = (await r.client.get(f"/v1/customers/{survivor}/readiness", headers=staff)).json()
    assert [a["code"] for a in view["assessments"]] == ["work-values"]
    audit = await r.pool.fetch(
        "SELECT action, actor_id, subject_id, details FROM audit_log"
        " WHERE action LIKE 'readiness.moved%' ORDER BY id")
    assert [(a["action"], a["actor_id"], a["subject_id"]) for a in audit] == [
        ("readiness.moved_by_merge", admin, survivor),
        ("readiness.moved_by_unmerge", admin, merged)]
    assert audit_details(audit[0]["details"])["records"] == 3
    assert audit_details(audit[1]["details"])["records"] == 4
