"""Reference data from the migrations: the 102 Illinois counties, the IDOC adult
facilities, offense categories; admins edit them, and a retired entry stays valid
on the records that have it but is not offered for new ones."""

from __future__ import annotations

from typing import Any

from tests.integration.enrollment.conftest import Stack, Staffer, form
from tests.integration.enrollment.helpers import enroll, fields_of, match

ILLINOIS_COUNTIES = (
    "Adams", "Alexander", "Bond", "Boone", "Brown", "Bureau", "Calhoun", "Carroll", "Cass",
    "Champaign", "Christian", "Clark", "Clay", "Clinton", "Coles", "Cook", "Crawford",
    "Cumberland", "DeKalb", "De Witt", "Douglas", "DuPage", "Edgar", "Edwards", "Effingham",
    "Fayette", "Ford", "Franklin", "Fulton", "Gallatin", "Greene", "Grundy", "Hamilton",
    "Hancock", "Hardin", "Henderson", "Henry", "Iroquois", "Jackson", "Jasper", "Jefferson",
    "Jersey", "Jo Daviess", "Johnson", "Kane", "Kankakee", "Kendall", "Knox", "Lake", "LaSalle",
    "Lawrence", "Lee", "Livingston", "Logan", "McDonough", "McHenry", "McLean", "Macon",
    "Macoupin", "Madison", "Marion", "Marshall", "Mason", "Massac", "Menard", "Mercer",
    "Monroe", "Montgomery", "Morgan", "Moultrie", "Ogle", "Peoria", "Perry", "Piatt", "Pike",
    "Pope", "Pulaski", "Putnam", "Randolph", "Richland", "Rock Island", "St. Clair", "Saline",
    "Sangamon", "Schuyler", "Scott", "Shelby", "Stark", "Stephenson", "Tazewell", "Union",
    "Vermilion", "Wabash", "Warren", "Washington", "Wayne", "White", "Whiteside", "Will",
    "Williamson", "Winnebago", "Woodford",
)


async def entries(stack: Stack, staff: Staffer, kind: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await stack.client.get(f"/v1/reference/{kind}", headers=staff.headers, params=query)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


async def test_all_102_illinois_counties(stack: Stack) -> None:
    staff = await stack.new_staff("clerk", "staff")
    counties = await entries(stack, staff, "counties")
    assert len(counties) == 102
    names = [c["name"] for c in counties]
    assert len(ILLINOIS_COUNTIES) == 102
    assert sorted(names) == sorted(ILLINOIS_COUNTIES)
    assert len({c["code"] for c in counties}) == 102
    by_name = {c["name"]: c for c in counties}
    assert by_name["Cook"]["code"] == "cook" and by_name["Cook"]["fips"] == "17031"
    assert by_name["St. Clair"]["code"] == "st-clair"
    # FIPS codes are the odd numbers 17001..17203, one per county
    assert sorted(int(c["fips"]) for c in counties) == list(range(17001, 17204, 2))
    # paged like every list
    r = await stack.client.get("/v1/reference/counties", headers=staff.headers,
                               params={"limit": 40})
    assert len(r.json()["items"]) == 40 and r.json()["next_cursor"]


async def test_institutions_and_offenses(stack: Stack) -> None:
    staff = await stack.new_staff("clerk", "staff")
    institutions = {e["code"]: e for e in await entries(stack, staff, "institutions")}
    assert institutions["kewanee-lsrc"]["name"] == "Kewanee Life Skills Re-entry Center"
    assert "murphysboro-lsrc" in institutions and "stateville" in institutions
    assert "dwight" not in institutions  # closed: not offered
    with_retired = {e["code"]: e for e in await entries(stack, staff, "institutions",
                                                         include_retired="true")}
    assert with_retired["dwight"]["retired"] is True
    offenses = {e["code"] for e in await entries(stack, staff, "offenses")}
    assert {"burglary", "drug-possession", "other"} <= offenses
    r = await stack.client.get("/v1/reference/planets", headers=staff.headers)
    assert r.status_code == 422


async def test_admins_edit_and_retire_entries(stack: Stack) -> None:
    admin = await stack.admin()
    staff = await stack.reentry_worker()
    old = await enroll(stack, staff)  # Kewanee, counties cook and will, offense burglary...

    # a new facility, a rename, and Kewanee retired
    r = await stack.client.put("/v1/reference/institutions/new-lsrc", headers=admin.headers,
                               json={"name": "New Life Skills Re-entry Center"})
    assert r.status_code == 201, r.text
    r = await stack.client.put("/v1/reference/offenses/burglary", headers=admin.headers,
                               json={"name": "Burglary (non-residential)"})
    assert r.status_code == 200 and r.json()["name"] == "Burglary (non-residential)"
    r = await stack.client.put("/v1/reference/institutions/kewanee-lsrc", headers=admin.headers,
                               json={"name": "Kewanee Life Skills Re-entry Center",
                                     "retired": True})
    assert r.status_code == 200 and r.json()["retired"] is True
    codes = {e["code"] for e in await entries(stack, staff, "institutions")}
    assert "new-lsrc" in codes and "kewanee-lsrc" not in codes
    audit = await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'reference.put' AND actor_id = $1",
        admin.id)
    assert audit == 3

    # not offered for new records...
    r = await match(stack, staff, form(idoc_number="K54321", idoc_number_confirmation="K54321"))
    assert r.status_code == 422 and fields_of(r) == ["parent_institution"]
    r = await match(stack, staff, form(idoc_number="K54321", idoc_number_confirmation="K54321",
                                       parent_institution="new-lsrc"))
    assert r.status_code == 200
    # ...still valid on the record that has it: it shows, and other changes go through
    path = f"/v1/returning-citizens/{old['enrollment_id']}"
    r = await stack.client.patch(path, headers=staff.headers, json={
        "parent_institution": "kewanee-lsrc", "msr_county": "will"})
    assert r.status_code == 200, r.text
    assert r.json()["parent_institution"] == "kewanee-lsrc"
    assert r.json()["labels"]["offenses"]["burglary"] == "Burglary (non-residential)"

    # bad entries
    r = await stack.client.put("/v1/reference/counties/Bad Code", headers=admin.headers,
                               json={"name": "", "retired": "no", "extra": 1})
    assert r.status_code == 422
    assert set(fields_of(r)) == {"code", "name", "retired", "extra"}
