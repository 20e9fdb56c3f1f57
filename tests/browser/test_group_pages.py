"""The staff console's group pages in Debian's Chromium, on the full stack (identity,
enrollment, groups, notify with a real SMTP sink, readiness and sync-iwds behind the
gateway): a staff member makes a personal group, sees and renews its passcode, switches
it off, invites by email (the email reaches the sink) and by customer, finds members,
sends a group message and watches its delivery status, resends a failed email, opens
the Assessment Dashboard and its CSV, and the customer's page says why they see the
customer. Mistakes show the USWDS error summary linked to the field; a group another
staff member cannot reach is a 404 page. axe-core finds no WCAG 2.1 A/AA violation on
any page."""

from __future__ import annotations

import email
import re
import uuid
from email.message import Message
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import Browser, FullStack, GatewayStack, axe
from tests.browser.test_pages import sign_in
from tests.integration.enrollment.conftest import STAFF_PASSWORD
from tests.support.kit import wait_until

CUSTOMER_PASSWORD = "copper meadow violin 2044"


async def look(browser: Browser, page: Page, name: str) -> None:
    """Screenshot, then axe: zero violations."""
    await browser.shot(page, name)
    violations = await axe(page)
    assert violations == [], f"{name}: {violations}"


def mails(mail_dir: Path | None) -> list[Message]:
    assert mail_dir is not None
    if not mail_dir.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(mail_dir.glob("*.eml"))]


async def wait_mail(stack: FullStack, to: str, subject_part: str, count: int = 1) -> None:
    async def arrived() -> bool:
        return sum(1 for m in mails(stack.mail_dir)
                   if to in str(m.get("To", "")) and subject_part in str(m.get("Subject", ""))
                   ) >= count
    await wait_until(arrived, timeout=30, interval=0.2)


async def customer(stack: FullStack, staff_token: str) -> dict[str, Any]:
    """Marcus, made by the staff member in identity (so they reach him: "created the
    account"), with an email, his own password, and known to groups, notify and
    readiness."""
    r = await stack.http.post(
        f"{stack.identity_url}/v1/customers", headers={"Authorization": f"Bearer {staff_token}"},
        json={"first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12",
              "email": "marcus@example.org"})
    assert r.status_code == 201, r.text
    made = dict(r.json())
    first = await stack.token(made["username"], made["temporary_password"])
    r = await stack.http.post(f"{stack.identity_url}/v1/me/password",
                              headers={"Authorization": f"Bearer {first}"},
                              json={"current_password": made["temporary_password"],
                                    "new_password": CUSTOMER_PASSWORD})
    assert r.status_code == 204, r.text
    cid = uuid.UUID(made["id"])
    for pool in (stack.groups_pool, stack.notify_pool, stack.readiness_pool):
        assert pool is not None

        async def known(pool: Any = pool) -> bool:
            return bool(await pool.fetchval("SELECT true FROM customers WHERE id = $1", cid))
        await wait_until(known, timeout=30, interval=0.1)
    made["token"] = await stack.token(made["username"], CUSTOMER_PASSWORD)
    return made


async def test_a_staff_member_runs_a_personal_group_from_the_pages(
    full_stack: FullStack, browser: Browser,
) -> None:
    stack = full_stack
    staff = await stack.new_staff("gwen", "reentry", first="Gwen", last="Grant")
    marcus = await customer(stack, staff.token)
    page = await browser.page()
    await sign_in(page, stack.url, "gwen", STAFF_PASSWORD)
    await expect(page).to_have_url(re.compile(r"/console$"))

    # My groups: every kind, none yet; the staff navigation links to My groups
    await expect(page.get_by_role("heading", name="My groups")).to_be_visible()
    for label in ("Personal groups", "LWIA groups", "Special program groups"):
        await expect(page.get_by_role("heading", name=re.compile(label))).to_be_visible()
    await expect(page.get_by_role("navigation", name="Primary navigation")
                 .get_by_role("link", name="My groups")).to_be_visible()
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Gwen Grant (gwen)")
    await look(browser, page, "my-groups-empty")

    # a group with no name: the error summary links to the field
    await page.get_by_role("button", name="Create group").click()
    summary = page.locator("#error-summary")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("Enter a name for the group")
    await look(browser, page, "create-group-error")
    await summary.get_by_role("link", name="Enter a name for the group").click()
    await expect(page.get_by_label("Group name", exact=True)).to_be_focused()
    await page.get_by_label("Group name", exact=True).fill("Resume workshop")
    await page.get_by_role("button", name="Create group").click()

    # the group: its web address and passcode
    await expect(page.get_by_role("heading", name="Resume workshop", level=1)).to_be_visible()
    await expect(page.get_by_text("The group is made.")).to_be_visible()
    group_id = page.url.split("/console/groups/")[1].split("?")[0]
    join_url = (await page.get_by_test_id("join-url").inner_text()).strip()
    assert re.fullmatch(r"http://localhost:\d+/join/\w+", join_url), join_url
    first_passcode = (await page.get_by_test_id("passcode").inner_text()).strip()
    assert first_passcode
    await look(browser, page, "group-new")
    await page.get_by_role("button", name="Make a new passcode").click()
    await expect(page.get_by_text("A new passcode is made")).to_be_visible()
    second = (await page.get_by_test_id("passcode").inner_text()).strip()
    assert second and second != first_passcode
    stored = await stack.groups_pool.fetchval(  # type: ignore[union-attr]
        "SELECT passcode FROM groups WHERE id = $1", uuid.UUID(group_id))
    assert stored == second
    # switching it off asks first (a USWDS modal)
    await page.get_by_role("button", name="Switch off the passcode").click()
    modal = page.get_by_role("dialog")
    await expect(modal.get_by_role("heading", name="Switch off joining with the passcode?")
                 ).to_be_visible()
    await look(browser, page, "passcode-off-modal")
    await modal.get_by_role("button", name="Switch it off").click()
    await expect(page.get_by_test_id("passcode-off")).to_be_visible()
    assert await stack.groups_pool.fetchval(  # type: ignore[union-attr]
        "SELECT passcode FROM groups WHERE id = $1", uuid.UUID(group_id)) is None
    await page.get_by_role("button", name="Switch on with a new passcode").click()
    await expect(page.get_by_test_id("passcode")).to_be_visible()

    # invitations: a bad address is named in the summary, linked to the box
    await page.get_by_role("link", name="Invitations", exact=True).click()
    await page.get_by_label("Email addresses", exact=True).fill("pat@example.org, not-an-email")
    await page.get_by_role("button", name="Send invitations").click()
    await expect(summary).to_contain_text("not an address: not-an-email")
    await look(browser, page, "invite-error")
    await summary.get_by_role("link").click()
    await expect(page.get_by_label("Email addresses", exact=True)).to_be_focused()
    await page.get_by_label("Email addresses", exact=True).fill("pat@example.org")
    await page.get_by_label("Customer account IDs", exact=True).fill(marcus["id"])
    await page.get_by_role("button", name="Send invitations").click()
    await expect(page.get_by_text("2 invitations sent.")).to_be_visible()
    board = page.locator("#invitation-table")
    await expect(board.get_by_role("row").filter(has_text="pat@example.org")
                 ).to_contain_text("Invited: no answer yet")
    await wait_mail(stack, "pat@example.org", "")
    # Marcus accepts in the portal (the customer pages are another feature): the board
    # and the members say so
    mine = await stack.http.get(f"{stack.groups_url}/v1/me/invitations",
                                headers={"Authorization": f"Bearer {marcus['token']}"})
    invitation = next(i for i in mine.json()["items"] if i["group_id"] == group_id)
    r = await stack.http.post(f"{stack.groups_url}/v1/invitations/{invitation['id']}/accept",
                              headers={"Authorization": f"Bearer {marcus['token']}"})
    assert r.status_code == 200, r.text
    await page.reload()
    await expect(board.get_by_role("row").filter(has_text="Marcus Oneil")
                 ).to_contain_text("Accepted")
    await look(browser, page, "invitation-board")
    # the board by status (htmx swaps the table)
    await page.get_by_label("Status", exact=True).select_option("pending")
    await expect(board.get_by_role("row").filter(has_text="Accepted")).to_have_count(0)
    await expect(board).to_contain_text("pat@example.org")
    # withdraw Pat's invitation
    await board.get_by_role("button", name=re.compile("^Withdraw")).click()
    await expect(page.get_by_text("The invitation is withdrawn.")).to_be_visible()

    # members: search, how each joined, since when
    await page.get_by_role("link", name="Members and subgroups").click()
    members = page.locator("#member-table")
    row = members.get_by_role("row").filter(has_text="Oneil, Marcus")
    await expect(row).to_contain_text("Accepted an invitation")
    await page.get_by_label("Name", exact=True).fill("zzz")
    await page.get_by_role("button", name="Find").click()
    await expect(members).to_contain_text("No members match this search.")
    await page.get_by_label("Name", exact=True).fill("One")
    await page.get_by_role("button", name="Find").click()
    await expect(row).to_be_visible()
    await expect(page).to_have_url(re.compile(r"q=One"))
    await look(browser, page, "group-members")

    # a subgroup (a class): made from the group's page, listed there and on My groups
    await page.get_by_role("button", name="Create subgroup").click()
    await expect(summary.get_by_role("link", name="Enter a name for the group")
                 ).to_be_visible()
    await expect(page.get_by_test_id("join-url")).to_have_text(join_url)
    await page.get_by_label("Subgroup name", exact=True).fill("Tuesday class")
    await page.get_by_role("button", name="Create subgroup").click()
    await expect(page.get_by_role("heading", name="Tuesday class", level=1)).to_be_visible()
    await expect(page.get_by_text("The subgroup is made.")).to_be_visible()
    await page.get_by_role("link", name="Resume workshop", exact=True).first.click()
    await expect(page.get_by_role("row").filter(has_text="Tuesday class")).to_contain_text("0")

    # a message: empty fields first, then one that goes out
    await page.get_by_role("link", name="Messages", exact=True).click()
    await page.get_by_role("button", name="Send message").click()
    await expect(summary).to_be_focused()
    await expect(summary.get_by_role("link", name="Enter a subject")).to_be_visible()
    await expect(summary.get_by_role("link", name="Enter the message")).to_be_visible()
    await look(browser, page, "message-error")
    await summary.get_by_role("link", name="Enter the message").click()
    await expect(page.get_by_label("Message", exact=True)).to_be_focused()
    await page.get_by_label("Subject", exact=True).fill("Bring your ID on Tuesday")
    await page.get_by_label("Message", exact=True).fill("The workshop starts at 10 a.m.")
    await page.get_by_role("button", name="Send message").click()
    await expect(page.get_by_role("heading", name=re.compile("Delivery status"))).to_be_visible()
    message_id = page.url.split("/messages/")[1].split("?")[0]
    # the page updates itself until the email is sent: inbox and email both "Sent"
    await wait_mail(stack, "marcus@example.org", "Bring your ID on Tuesday")
    await expect(page.locator("#count-sent")).to_have_text("2", timeout=30_000)
    table = page.locator("#delivery-table")
    # once nothing waits, the page loads again whole: the table has the final statuses
    email_row = table.get_by_role("row").filter(has_text="Email: marcus@example.org")
    await expect(email_row).to_contain_text("Sent", timeout=30_000)
    await expect(table.get_by_role("row").filter(has_text="Portal inbox")
                 ).to_contain_text("Oneil")
    await page.wait_for_load_state()
    await look(browser, page, "message-status")

    # a failed email is offered for resending, and goes out again
    await stack.notify_pool.execute(  # type: ignore[union-attr]
        "UPDATE deliveries SET status = 'failed', last_reply = '550 5.1.1 Mailbox unavailable'"
        " WHERE message_id = $1 AND channel = 'email'", uuid.UUID(message_id))
    await page.reload()
    await expect(page.locator("#count-failed")).to_have_text("1")
    await expect(table).to_contain_text("550 5.1.1 Mailbox unavailable")
    await look(browser, page, "message-failed")
    await page.get_by_role("button", name=re.compile("^Resend failed emails")).click()
    await expect(page.get_by_text("1 failed email will be sent again.")).to_be_visible()
    await wait_mail(stack, "marcus@example.org", "Bring your ID on Tuesday", count=2)
    await expect(page.locator("#count-sent")).to_have_text("2", timeout=30_000)
    await expect(email_row).to_contain_text("Sent", timeout=30_000)
    await expect(email_row).to_contain_text("2")  # tries
    await page.wait_for_load_state()
    await page.get_by_role("link", name="Back to the group's messages").click()
    await expect(page.get_by_role("row").filter(has_text="Bring your ID on Tuesday")
                 ).to_contain_text("1")

    # the Assessment Dashboard: readiness counts the member (from groups' events)
    await page.get_by_role("link", name="Assessment Dashboard", exact=True).click()

    async def counted() -> bool:
        await page.reload()
        text = await page.get_by_test_id("dashboard-members").inner_text()
        return bool(text.startswith("1 member"))
    await wait_until(counted, timeout=30, interval=0.5)
    dash = page.get_by_test_id("dashboard")
    career = dash.get_by_role("row").filter(has_text="Career Cluster")
    await expect(career).to_contain_text("0")
    await look(browser, page, "dashboard")
    await career.get_by_role("link", name=re.compile("have not completed")).click()
    await expect(page.get_by_role("heading", name="Not completed: Career Cluster Assessment")
                 ).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="Oneil, Marcus")).to_contain_text(
        "Not completed")
    await look(browser, page, "dashboard-people")
    csv_link = page.get_by_role("link", name="Download this list (CSV)")
    csv = await page.request.get(stack.url + str(await csv_link.get_attribute("href")))
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "Oneil" in await csv.text()
    # a reminder to everyone who has not completed it: empty first, then sent, and its
    # delivery status is the message's
    await page.get_by_label("Subject", exact=True).fill("")
    await page.get_by_role("button", name="Send reminder").click()
    await expect(summary).to_contain_text("Enter a subject")
    await expect(summary).to_contain_text("Enter the message")
    await look(browser, page, "reminder-error")
    await page.get_by_label("Subject", exact=True).fill("Please finish your Career Cluster")
    await page.get_by_label("Message", exact=True).fill("It takes 20 minutes.")
    await page.get_by_role("button", name="Send reminder").click()
    await expect(page.get_by_role("heading", name=re.compile("Delivery status"))).to_be_visible()
    await wait_mail(stack, "marcus@example.org", "Please finish your Career Cluster")
    await expect(page.locator("#count-sent")).to_have_text("2", timeout=30_000)
    # a date that is not a date: the summary names the field
    await page.goto(f"{stack.url}/console/groups/{group_id}/dashboard?from=2026-13-01&to=")
    await expect(summary).to_contain_text("From: enter a date like 2026-03-31")
    await look(browser, page, "dashboard-error")

    # the customer's page: groups, why the staff member sees him, readiness
    await page.goto(f"{stack.url}/console/groups/{group_id}")
    await page.locator("#member-table").get_by_role("link", name="Oneil, Marcus").click()
    await expect(page.get_by_role("heading", name="Marcus Oneil")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="Resume workshop")
                 ).to_contain_text("Accepted an invitation")
    why = page.get_by_test_id("access-via")
    await expect(why).to_contain_text("Created the account")
    await expect(why).to_contain_text("Resume workshop")
    await expect(page.get_by_role("heading", name="Readiness")).to_be_visible()
    await expect(page.get_by_text("No assessments completed yet.")).to_be_visible()
    await look(browser, page, "customer-groups")

    # My groups now lists the group with its member count
    await page.goto(f"{stack.url}/console")
    personal = page.get_by_test_id("groups-personal")
    workshop = personal.get_by_role("row").filter(has_text="Resume workshop")
    await expect(workshop.get_by_role("cell").first).to_have_text("1")
    await expect(workshop.get_by_role("link", name="Tuesday class")).to_be_visible()
    await look(browser, page, "my-groups")

    # another staff member does not reach the group: the same 404 page as no group at all
    await stack.new_staff("otto", "reentry", first="Otto", last="Other")
    other = await browser.page()
    await sign_in(other, stack.url, "otto", STAFF_PASSWORD)
    for path in (f"/console/groups/{group_id}", f"/console/groups/{group_id}/invitations",
                 f"/console/groups/{group_id}/messages/{message_id}",
                 f"/console/groups/{group_id}/dashboard", f"/console/groups/{uuid.uuid4()}",
                 f"/console/people/{marcus['id']}"):
        answer = await other.goto(stack.url + path)
        assert answer is not None and answer.status == 404, path
        await expect(other.get_by_role("heading", name=re.compile("^We cannot find that"))
                     ).to_be_visible()
    await expect(other.get_by_text("Resume workshop")).to_have_count(0)
    await look(browser, other, "not-found")


async def test_a_program_group_and_the_returning_citizens_customer_page(
    full_stack: FullStack, browser: Browser,
) -> None:
    """Staff authorized for Returning Citizens reach its program group (filled from
    enrollment's events): My groups counts it, its page has no web address or
    invitations, and the customer's page says why the staff member sees him."""
    from tests.integration.enrollment.conftest import form

    stack = full_stack
    staff = await stack.reentry_worker("rcase")
    r = await stack.http.post(f"{stack.enrollment_url}/v1/returning-citizens",
                              headers={"Authorization": f"Bearer {staff.token}",
                                       "Idempotency-Key": f"intake-{uuid.uuid4()}"},
                              json={**form(), "rejected_account_ids": []})
    assert r.status_code == 201, r.text
    enrollment_id = r.json()["enrollment_id"]
    gp = stack.groups_pool
    assert gp is not None

    async def grouped() -> bool:
        return bool(await gp.fetchval(
            "SELECT count(*) FROM memberships m JOIN groups g ON g.id = m.group_id"
            " WHERE g.kind = 'program'") and await gp.fetchval(
            "SELECT count(*) FROM program_staff WHERE staff_id = $1", staff.id))
    await wait_until(grouped, timeout=30, interval=0.2)

    page = await browser.page()
    await sign_in(page, stack.url, "rcase", STAFF_PASSWORD)
    programs = page.get_by_test_id("groups-program")
    row = programs.get_by_role("row").nth(1)
    await expect(row.get_by_role("cell").first).to_have_text("1")
    await look(browser, page, "my-groups-program")
    await row.get_by_role("link").first.click()
    await expect(page.get_by_text("Special program group", exact=True)).to_be_visible()
    await expect(page.get_by_test_id("join-url")).to_have_count(0)
    await expect(page.get_by_role("link", name="Invitations", exact=True)).to_have_count(0)
    await expect(page.locator("#member-table").get_by_role("row").filter(
        has_text="Oneil, Marcus")).to_contain_text("Enrolled in the program")
    await look(browser, page, "program-group")
    # invitations belong to personal groups only
    group_id = page.url.split("/console/groups/")[1].split("?")[0]
    answer = await page.goto(f"{stack.url}/console/groups/{group_id}/invitations")
    assert answer is not None and answer.status == 404
    # a form without the session's CSRF token sends nothing and makes nothing
    sent = await page.request.post(f"{stack.url}/console/groups/{group_id}/messages",
                                   form={"subject": "Hi", "body": "Hello"})
    made = await page.request.post(f"{stack.url}/console/groups", form={"name": "Sneaky"})
    assert (sent.status, made.status) == (403, 403)
    assert await stack.gateway_pool.fetchval("SELECT count(*) FROM group_messages") == 0
    assert await gp.fetchval("SELECT count(*) FROM groups WHERE name = 'Sneaky'") == 0

    await page.goto(f"{stack.url}/console/customers/{enrollment_id}")
    await expect(page.get_by_role("heading", name="Password help")).to_be_visible()
    await expect(page.get_by_test_id("access-via")).to_contain_text(
        "Authorized for program returning-citizens")
    await expect(page.get_by_role("heading", name="Readiness")).to_be_visible()
    await look(browser, page, "rc-customer-with-groups")


async def test_group_pages_when_groups_does_not_answer(
    gateway_stack: GatewayStack, browser: Browser,
) -> None:
    """groups down: My groups says the groups cannot be shown and still offers Returning
    Citizens; a group's page is a 503 page naming the service, and still says who is
    signed in."""
    stack = gateway_stack
    await stack.new_staff("gwen", "reentry", first="Gwen", last="Grant")
    page = await browser.page()
    await sign_in(page, stack.url, "gwen", STAFF_PASSWORD)
    await expect(page.get_by_text("Your groups cannot be shown right now")).to_be_visible()
    await expect(page.get_by_role("button", name="Create group")).to_have_count(0)
    await expect(page.get_by_role("link", name="open the Returning Citizens customer list")
                 ).to_be_visible()
    await look(browser, page, "my-groups-groups-down")
    answer = await page.goto(f"{stack.url}/console/groups/{uuid.uuid4()}")
    assert answer is not None and answer.status == 503
    await expect(page.get_by_text("The groups service is unavailable")).to_be_visible()
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Gwen Grant (gwen)")
    await look(browser, page, "group-groups-down")
