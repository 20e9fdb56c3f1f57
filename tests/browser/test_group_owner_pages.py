"""A personal group's people, by hand, in Debian's Chromium on the full stack: its owner
adds a customer as a member (found by email or username) and removes him behind a
confirmation modal, adds a co-owner (found by username) and removes them; the groups
service's refusals (removing the group's owner, a non-owner's forged form) come back as
the page's error, never a 500; an administrator hands a departing staff member's
groups to another from the admin navigation and sees how many moved. Bad input (empty
fields, unknown usernames) gets the USWDS error summary linked to the field with a 4xx.
Each change is checked in the groups database; axe-core finds no WCAG 2.1 A/AA
violation on any page state."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import Browser, FullStack
from tests.browser.test_group_pages import customer, look
from tests.browser.test_pages import sign_in
from tests.integration.enrollment.conftest import STAFF_PASSWORD
from tests.support.kit import wait_until


async def submit(page: Page, button: str) -> int:
    """Press a form's button; the status of the page the POST answers with (the last
    one after a redirect)."""
    async with page.expect_navigation() as nav:
        await page.get_by_role("button", name=button, exact=True).click()
    answer = await nav.value
    assert answer is not None
    return int(answer.status)


async def summary_says(page: Page, message: str, field_label: str) -> None:
    """The error summary has the message, linked to the field it names."""
    summary = page.locator("#error-summary")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text(message)
    await summary.get_by_role("link", name=message).first.click()
    await expect(page.get_by_label(field_label, exact=True)).to_be_focused()


async def csrf(page: Page) -> str:
    return str(await page.locator("input[name=csrf_token]").first.get_attribute("value"))


async def test_owners_manage_members_and_co_owners_and_an_admin_hands_groups_over(
    full_stack: FullStack, browser: Browser,
) -> None:
    stack = full_stack
    gp = stack.groups_pool
    assert gp is not None
    gwen = await stack.new_staff("gwen", "reentry", first="Gwen", last="Grant")
    pat = await stack.new_staff("pat", "reentry", first="Pat", last="Lee")
    await stack.new_staff("ada", "admin", first="Ada", last="Min")
    marcus = await customer(stack, gwen.token)  # gwen made his account: she reaches him
    marcus_id = uuid.UUID(marcus["id"])
    for who in (gwen, pat):
        await wait_until(lambda who=who: _known_staff(gp, who.id), timeout=30, interval=0.1)

    page = await browser.page()
    await sign_in(page, stack.url, "gwen", STAFF_PASSWORD)
    await page.get_by_label("Group name", exact=True).fill("Job club")
    await page.get_by_role("button", name="Create group").click()
    await expect(page.get_by_role("heading", name="Job club", level=1)).to_be_visible()
    group_id = uuid.UUID(page.url.split("/console/groups/")[1].split("?")[0])
    base = f"{stack.url}/console/groups/{group_id}"
    owners = page.get_by_test_id("owners")
    await expect(owners.get_by_role("row").filter(has_text="Gwen Grant (gwen)")
                 ).to_contain_text("Owner")
    await look(browser, page, "group-owner-view")

    # -- members by hand: empty, unknown, then by email --------------------------------
    member_box = "Username or email address"
    assert await submit(page, "Add member") == 422
    await summary_says(page, "Enter the customer's username or email address", member_box)
    await look(browser, page, "add-member-empty")
    await page.get_by_label(member_box, exact=True).fill("nosuch-person")
    assert await submit(page, "Add member") == 422
    await summary_says(page, "No customer you can see has the username nosuch-person",
                       member_box)
    await expect(page.get_by_label(member_box, exact=True)).to_have_value("nosuch-person")
    await look(browser, page, "add-member-unknown")
    await page.get_by_label(member_box, exact=True).fill("Marcus@Example.org")
    assert await submit(page, "Add member") == 200
    await expect(page.get_by_text("The customer is now a member of the group.")).to_be_visible()
    row = page.locator("#member-table").get_by_role("row").filter(has_text="Oneil, Marcus")
    await expect(row).to_contain_text("Added by staff")
    assert await gp.fetchrow(
        "SELECT source, added_by FROM memberships WHERE group_id = $1 AND customer_id = $2",
        group_id, marcus_id) == ("staff", gwen.id)
    await look(browser, page, "member-added")
    await page.get_by_label(member_box, exact=True).fill(marcus["username"])
    assert await submit(page, "Add member") == 200
    await expect(page.get_by_text("That customer is already a member of the group.")
                 ).to_be_visible()

    # removing asks first; the modal serves rows the member search swapped in (htmx)
    await page.get_by_label("Name", exact=True).fill("Oneil")
    await page.get_by_role("button", name="Find", exact=True).click()
    await expect(page).to_have_url(re.compile(r"q=Oneil"))
    await page.locator("#member-table").get_by_role("link", name="Remove Marcus Oneil").click()
    modal = page.get_by_role("dialog")
    await expect(modal.get_by_role("heading", name="Remove this member?")).to_be_visible()
    await expect(modal).to_contain_text("Marcus Oneil leaves Job club.")
    await look(browser, page, "remove-member-modal")
    await modal.get_by_role("button", name="Remove from the group").click()
    await expect(page.get_by_text("The member is removed from the group.")).to_be_visible()
    await expect(page.locator("#member-table")).to_contain_text("No members yet.")
    assert await gp.fetchval("SELECT count(*) FROM memberships WHERE group_id = $1",
                             group_id) == 0
    await look(browser, page, "member-removed")
    # a member who is gone already: the form's error, a 404, not a 500
    gone = await page.request.post(f"{base}/members/remove", form={
        "csrf_token": await csrf(page), "customer_id": str(marcus_id)})
    assert gone.status == 404
    assert "not a member of this group any more" in await gone.text()
    # a subgroup takes only the group's members: groups' refusal is the field's error
    await page.get_by_label("Subgroup name", exact=True).fill("Tuesday cohort")
    await page.get_by_role("button", name="Create subgroup").click()
    await expect(page.get_by_text("The subgroup is made.")).to_be_visible()
    await expect(page.get_by_text("Only members of Job club can be added to this subgroup.")
                 ).to_be_visible()
    await page.get_by_label(member_box, exact=True).fill(marcus["username"])
    assert await submit(page, "Add member") == 422
    await summary_says(page, f"Marcus Oneil ({marcus['username']}) is not a member of the "
                             "parent group.", member_box)
    await look(browser, page, "subgroup-add-refused")
    assert await gp.fetchval("SELECT count(*) FROM memberships WHERE customer_id = $1",
                             marcus_id) == 0
    await page.goto(base)

    # -- co-owners -----------------------------------------------------------------------
    owner_box = "Staff username"
    assert await submit(page, "Add co-owner") == 422
    await summary_says(page, "Enter the username of the staff member to add", owner_box)
    await page.get_by_label(owner_box, exact=True).fill("nobody")
    assert await submit(page, "Add co-owner") == 422
    await summary_says(page, "No staff member has the username nobody.", owner_box)
    await look(browser, page, "add-co-owner-unknown")
    await page.get_by_label(owner_box, exact=True).fill("PAT")
    assert await submit(page, "Add co-owner") == 200
    await expect(page.get_by_text("The staff member is now a co-owner of the group.")
                 ).to_be_visible()
    await expect(owners.get_by_role("row").filter(has_text="Pat Lee (pat)")
                 ).to_contain_text("Co-owner")
    assert await gp.fetchval("SELECT role FROM group_owners WHERE group_id = $1"
                             " AND staff_id = $2", group_id, pat.id) == "co-owner"
    await look(browser, page, "co-owner-added")
    # the group's owner has no Remove; a forged removal gets groups' refusal as the error
    await expect(owners.get_by_role("row").filter(has_text="Gwen Grant (gwen)")
                 .locator("[data-open-modal]")).to_have_count(0)
    refused = await page.request.post(f"{base}/owners/{gwen.id}/remove",
                                      form={"csrf_token": await csrf(page)})
    assert refused.status == 409
    assert "The group&#39;s owner cannot be removed" in await refused.text()
    assert await gp.fetchval("SELECT count(*) FROM group_owners WHERE group_id = $1",
                             group_id) == 2
    # (USWDS makes a modal's opening link a button)
    await owners.get_by_role("button", name="Remove Pat Lee (pat) as co-owner").click()
    modal = page.get_by_role("dialog")
    await expect(modal.get_by_role("heading", name="Remove Pat Lee (pat) as co-owner?")
                 ).to_be_visible()
    await look(browser, page, "remove-co-owner-modal")
    await modal.get_by_role("button", name="Remove co-owner").click()
    await expect(page.get_by_text("The co-owner is removed")).to_be_visible()
    assert await gp.fetchval("SELECT count(*) FROM group_owners WHERE group_id = $1"
                             " AND staff_id = $2", group_id, pat.id) == 0
    # a non-administrator has no hand-over page
    await expect(page.get_by_role("link", name="Hand over groups")).to_have_count(0)
    await page.goto(f"{stack.url}/console/hand-overs")
    await expect(page).to_have_url(re.compile(r"/console$"))

    # -- an administrator: sees the group without owner controls; hands pat's groups over
    for name in ("Tuesday class", "Friday class"):
        r = await stack.http.post(f"{stack.groups_url}/v1/groups", json={"name": name},
                                  headers={"Authorization": f"Bearer {pat.token}"})
        assert r.status_code == 201, r.text
    admin = await browser.page()
    await sign_in(admin, stack.url, "ada", STAFF_PASSWORD)
    await admin.goto(base)
    await expect(admin.get_by_role("heading", name="Owners")).to_be_visible()
    for control in ("Add member", "Add co-owner"):
        await expect(admin.get_by_role("button", name=control)).to_have_count(0)
    await expect(admin.locator("[data-open-modal]")).to_have_count(0)
    await look(browser, admin, "group-admin-view")
    forged = await admin.request.post(f"{base}/members", form={
        "csrf_token": await csrf(admin), "member": marcus["username"]})
    assert forged.status == 403
    assert "Only the group&#39;s owners can change its members" in await forged.text()
    assert await gp.fetchval("SELECT count(*) FROM memberships WHERE group_id = $1",
                             group_id) == 0

    await admin.get_by_role("link", name="Hand over groups").click()
    await expect(admin.get_by_role("heading", name="Hand over groups", level=1)).to_be_visible()
    await look(browser, admin, "hand-over")
    assert await submit(admin, "Hand over the groups") == 422
    summary = admin.locator("#error-summary")
    await expect(summary).to_contain_text("There are 2 problems")
    await summary_says(admin, "Enter the username of the staff member who is leaving",
                       "Departing staff member's username")
    await look(browser, admin, "hand-over-empty")
    await admin.get_by_label("Departing staff member's username", exact=True).fill("pat")
    await admin.get_by_label("New owner's username", exact=True).fill("pat")
    assert await submit(admin, "Hand over the groups") == 422
    await summary_says(admin, "Choose someone other than the staff member who is leaving",
                       "New owner's username")
    await admin.get_by_label("New owner's username", exact=True).fill("gwen-who")
    assert await submit(admin, "Hand over the groups") == 422
    await summary_says(admin, "No staff member has the username gwen-who.",
                       "New owner's username")
    await admin.get_by_label("New owner's username", exact=True).fill("gwen")
    assert await submit(admin, "Hand over the groups") == 200
    await expect(admin.get_by_test_id("hand-over-outcome")).to_contain_text(
        "2 groups moved from Pat Lee (pat) to Gwen Grant (gwen).")
    assert await gp.fetchval(
        "SELECT array_agg(DISTINCT owner_id) FROM groups WHERE name IN"
        " ('Tuesday class', 'Friday class')") == [gwen.id]
    await look(browser, admin, "hand-over-done")
    # nothing left to move: said plainly
    await admin.get_by_label("Departing staff member's username", exact=True).fill("pat")
    await admin.get_by_label("New owner's username", exact=True).fill("gwen")
    assert await submit(admin, "Hand over the groups") == 200
    await expect(admin.get_by_test_id("hand-over-outcome")).to_contain_text(
        "Pat Lee (pat) owns no personal groups, so nothing was moved.")
    # gwen now owns them: My groups lists them
    await page.goto(f"{stack.url}/console")
    await expect(page.get_by_role("link", name="Tuesday class")).to_be_visible()


async def _known_staff(pool: Any, staff_id: uuid.UUID) -> bool:
    return bool(await pool.fetchval("SELECT true FROM staff WHERE id = $1", staff_id))
