"""The customer's pages in Debian's Chromium against every service behind the gateway:
joining a group by its web address and passcode (a wrong passcode, then too many),
accepting and declining invitations (and one already answered), the inbox with a group
message sent through the groups API (and someone else's message: not found), the
temporary-password rule on the new pages; axe-core finds no WCAG 2.1 A/AA violation."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Browser, FullStack, Staff
from tests.browser.test_pages import look, sign_in
from tests.integration.enrollment.conftest import STAFF_PASSWORD
from tests.support.kit import wait_until

PASSWORD = "copper meadow violin 4410"


@dataclass
class Customer:
    id: uuid.UUID
    username: str
    temporary_password: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until_row(pool: Any, sql: str, *args: Any) -> None:
    async def there() -> bool:
        return bool(await pool.fetchval(sql, *args))
    await wait_until(there, timeout=30, interval=0.05)


async def group_staff(stack: FullStack, username: str) -> Staff:
    staff = await stack.new_staff(username, "staff", first="Gwen", last="Owens")
    await until_row(stack.groups_pool, "SELECT true FROM staff WHERE id = $1", staff.id)
    return staff


async def new_customer(stack: FullStack, by: Staff, first: str, last: str, born: str,
                       *, change_password: bool = True) -> Customer:
    """An account staff made in identity (the services' directories know it); its
    temporary password changed through the API unless ``change_password`` is False."""
    r = await stack.http.post(f"{stack.identity_url}/v1/customers", headers=bearer(by.token),
                              json={"first_name": first, "last_name": last,
                                    "date_of_birth": born})
    assert r.status_code == 201, r.text
    made = r.json()
    customer = Customer(uuid.UUID(made["id"]), made["username"], made["temporary_password"])
    if change_password:
        first_token = await stack.token(customer.username, customer.temporary_password)
        r = await stack.http.post(f"{stack.identity_url}/v1/me/password",
                                  headers=bearer(first_token),
                                  json={"current_password": customer.temporary_password,
                                        "new_password": PASSWORD})
        assert r.status_code == 204, r.text
    await until_row(stack.groups_pool, "SELECT true FROM customers WHERE id = $1", customer.id)
    await until_row(stack.notify_pool, "SELECT true FROM customers WHERE id = $1", customer.id)
    return customer


async def new_group(stack: FullStack, owner: Staff, name: str) -> dict[str, Any]:
    r = await stack.http.post(f"{stack.groups_url}/v1/groups", headers=bearer(owner.token),
                              json={"name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def invite(stack: FullStack, owner: Staff, group: dict[str, Any], who: Customer) -> None:
    r = await stack.http.post(f"{stack.groups_url}/v1/groups/{group['id']}/invitations",
                              headers=bearer(owner.token),
                              json={"customer_ids": [str(who.id)]})
    assert r.status_code == 201, r.text
    assert [i["status"] for i in r.json()["items"]] == ["pending"]


async def passcode(page: Page, value: str) -> None:
    await page.get_by_label("Passcode", exact=True).fill(value)
    await page.get_by_role("button", name="Join group").click()


@pytest.mark.timeout(600)  # the longest walk of the suite: 250 s on the loaded build machine
async def test_a_customer_joins_by_address_answers_invitations_and_reads_the_inbox(
    full_stack: FullStack, browser: Browser,
) -> None:
    stack = full_stack
    owner = await group_staff(stack, "gowens")
    lena = await new_customer(stack, owner, "Lena", "Park", "1991-05-06")
    workshop = await new_group(stack, owner, "Resume workshop")
    forklift = await new_group(stack, owner, "Forklift class")
    evening = await new_group(stack, owner, "Evening class")
    await invite(stack, owner, forklift, lena)
    await invite(stack, owner, evening, lena)

    # the group's web address, opened before signing in: sign in, then back to it
    page = await browser.page()
    await page.goto(f"{stack.url}/join/{workshop['join_code']}")
    await expect(page).to_have_url(re.compile(r"/signin\?next=/join/"))
    await page.get_by_label("Username", exact=True).fill(lena.username)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).to_have_url(re.compile(rf"/join/{workshop['join_code']}$"))
    await expect(page.get_by_role("heading", name="Join Resume workshop")).to_be_visible()
    await look(browser, page, "join")

    # a wrong passcode: the error summary and the field's own message
    await passcode(page, "WRONG123")
    summary = page.locator("#error-summary")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("That passcode is not right")
    await expect(page.locator("#passcode-error")).to_contain_text("not right")
    await expect(page.get_by_label("Passcode", exact=True)).to_have_attribute(
        "aria-invalid", "true")
    await look(browser, page, "join-wrong-passcode")
    await summary.get_by_role("link").click()
    await expect(page.get_by_label("Passcode", exact=True)).to_be_focused()

    # the right one (as typed by hand: lower case) joins; My groups lists it
    await passcode(page, workshop["passcode"].lower())
    await expect(page).to_have_url(re.compile(r"/groups\?joined="))
    await expect(page.get_by_text("You joined Resume workshop.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Resume workshop")
    await expect(row).to_contain_text("With the passcode")
    await look(browser, page, "my-groups")

    # the address can be typed in too
    await page.goto(f"{stack.url}/join")
    await page.get_by_label("Group web address", exact=True).fill("not an address")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#error-summary")).to_contain_text("web address")
    await look(browser, page, "join-address-error")
    await page.get_by_label("Group web address", exact=True).fill(
        f"http://127.0.0.1:8100/join/{workshop['join_code']}")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Join Resume workshop")).to_be_visible()
    await page.goto(f"{stack.url}/join/zzzzzzzzzz")
    await expect(page.get_by_role("heading", name="No group has this web address")
                 ).to_be_visible()
    await look(browser, page, "join-no-such-address")

    # invitations: accept one, decline the other; a stale page cannot answer twice
    await page.get_by_role("link", name="Invitations", exact=True).click()
    cards = page.locator("section.usa-card")
    await expect(cards).to_have_count(2)
    await look(browser, page, "invitations")
    stale = await page.context.new_page()
    await stale.goto(f"{stack.url}/invitations")
    await cards.filter(has_text="Forklift class").get_by_role("button", name="Accept").click()
    await expect(page.get_by_text("You joined Forklift class.")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="Forklift class")
                 ).to_contain_text("By invitation")
    await stale.locator("section.usa-card").filter(has_text="Forklift class").get_by_role(
        "button", name="Accept").click()
    await expect(stale.locator("#error-summary")).to_contain_text(
        "can no longer be answered")
    await expect(stale.locator("section.usa-card")).to_have_count(1)
    await look(browser, stale, "invitation-already-answered")
    await stale.close()
    await page.goto(f"{stack.url}/invitations")
    await page.locator("section.usa-card").filter(has_text="Evening class").get_by_role(
        "button", name="Decline").click()
    await expect(page.get_by_text("You declined the invitation.")).to_be_visible()
    await expect(page.get_by_text("You have no invitations waiting.")).to_be_visible()
    statuses = {r["status"] for r in await stack.groups_pool.fetch(
        "SELECT status FROM invitations WHERE customer_id = $1", lena.id)}
    assert statuses == {"accepted", "declined"}

    # a message to the group, sent through the API, reaches the inbox
    r = await stack.http.post(f"{stack.groups_url}/v1/groups/{workshop['id']}/messages",
                              headers=bearer(owner.token),
                              json={"subject": "Bring your ID on Tuesday",
                                    "body": "We meet at 10 am.\nRoom 4, second floor."})
    assert r.status_code == 202, r.text
    await until_row(stack.notify_pool, "SELECT true FROM inbox_items WHERE customer_id = $1 "
                    "AND kind = 'group'", lena.id)
    unread = await stack.notify_pool.fetchval(
        "SELECT count(*) FROM inbox_items WHERE customer_id = $1 AND read_at IS NULL", lena.id)
    await page.get_by_role("link", name="Inbox", exact=True).click()
    await expect(page.get_by_test_id("unread")).to_have_text(
        f"You have {unread} unread message{'s' if unread != 1 else ''}.")
    first = page.get_by_role("row").nth(1)  # newest first: the group message came last
    await expect(first).to_contain_text("Bring your ID on Tuesday")
    await expect(first).to_contain_text("New")
    await look(browser, page, "inbox")
    await first.get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Bring your ID on Tuesday")).to_be_visible()
    await expect(page.get_by_text("Room 4, second floor.")).to_be_visible()
    await look(browser, page, "message")
    item_id = page.url.rsplit("/", 1)[-1]
    assert await stack.notify_pool.fetchval(
        "SELECT read_at IS NOT NULL FROM inbox_items WHERE id = $1", uuid.UUID(item_id))
    await page.get_by_role("link", name="Back to inbox").click()
    await expect(page.get_by_test_id("unread")).to_contain_text(
        f"{unread - 1} unread" if unread > 1 else "no unread")
    await expect(page.get_by_role("row").nth(1)).to_contain_text("Read")
    await page.get_by_role("link", name="My account", exact=True).click()
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await look(browser, page, "customer-home")

    # another customer: a temporary password leads only to the change page, the new
    # pages included; then someone else's message is not found, and too many wrong
    # passcodes stop with a plain message
    omar = await new_customer(stack, owner, "Omar", "Diaz", "1985-09-10",
                              change_password=False)
    other = await browser.page()
    await sign_in(other, stack.url, omar.username, omar.temporary_password)
    await expect(other).to_have_url(re.compile(r"/account/password$"))
    for elsewhere in ("/groups", "/invitations", "/inbox", f"/inbox/{item_id}", "/join",
                      f"/join/{workshop['join_code']}"):
        await other.goto(stack.url + elsewhere)
        await expect(other).to_have_url(re.compile(r"/account/password$"))
    await other.get_by_label("Current password", exact=True).fill(omar.temporary_password)
    await other.get_by_label("New password", exact=True).fill(PASSWORD)
    await other.get_by_label("Confirm new password", exact=True).fill(PASSWORD)
    await other.get_by_role("button", name="Change password").click()
    await expect(other).to_have_url(re.compile(r"/me\?changed=1$"))
    response = await other.goto(f"{stack.url}/inbox/{item_id}")
    assert response is not None and response.status == 404
    await expect(other.get_by_role("heading", name="We could not find that message")
                 ).to_be_visible()
    assert "Room 4" not in await other.content()
    await look(browser, other, "someone-elses-message")
    response = await other.goto(f"{stack.url}/inbox/not-a-message")
    assert response is not None and response.status == 404
    await other.goto(f"{stack.url}/join/{workshop['join_code']}")
    for _ in range(4):  # with Lena's, five wrong passcodes for this group
        await passcode(other, "NOTRIGHT")
        await expect(other.locator("#passcode-error")).to_contain_text("not right")
    await passcode(other, workshop["passcode"])  # even the right one, for a while
    await expect(other.get_by_role("heading", name="Please wait")).to_be_visible()
    waiting = re.compile(r"Too many wrong passcodes\. Try again in \d+ minutes?\.")
    await expect(other.get_by_text(waiting)).to_be_visible()
    await look(browser, other, "join-throttled")
    assert not await stack.groups_pool.fetchval(
        "SELECT true FROM memberships WHERE customer_id = $1", omar.id)

    # staff do not get the customer's pages
    staff_page = await browser.page()
    await sign_in(staff_page, stack.url, owner.username, STAFF_PASSWORD)
    await staff_page.goto(f"{stack.url}/inbox")
    await expect(staff_page).to_have_url(re.compile(r"/console$"))

