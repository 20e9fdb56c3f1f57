"""The possible-duplicates queue in Debian's Chromium: a pair found by identity's
matcher is merged (the account chosen stays), the merge undone, and a page left open
on the same pair cannot decide it again (an error alert, the queue as it is now)."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect

from tests.browser.conftest import GatewayStack
from tests.browser.test_pages import Browser, look, sign_in
from tests.integration.enrollment.conftest import STAFF_PASSWORD
from tests.support.kit import wait_until


async def test_merge_undo_and_a_pair_already_decided(
    gateway_stack: GatewayStack, browser: Browser,
) -> None:
    stack = gateway_stack
    ada = await stack.new_staff("ada", "admin", first="Ada", last="Min")
    r = await stack.http.post(
        f"{stack.identity_url}/v1/customers", headers={"Authorization": f"Bearer {ada.token}"},
        json={"first_name": "Robert", "last_name": "Reyes", "date_of_birth": "1979-11-02"})
    assert r.status_code == 201, r.text
    robert = uuid.UUID(r.json()["id"])
    # a look-alike registers (a nickname, a birthday a digit off): a possible pair
    r = await stack.http.post(f"{stack.identity_url}/v1/registrations", json={
        "username": "breyes79", "password": "a long and memorable passphrase",
        "first_name": "Bob", "last_name": "Reyes", "date_of_birth": "1979-11-03"})
    assert r.status_code in (201, 202), r.text

    async def queued() -> bool:
        return bool(await stack.identity_pool.fetchval(
            "SELECT true FROM duplicate_pairs WHERE status = 'open'"))
    await wait_until(queued, timeout=30, interval=0.05)

    page = await browser.page()
    await sign_in(page, stack.url, "ada", STAFF_PASSWORD)
    await page.get_by_role("link", name="Possible duplicates").click()
    pair = page.locator("section").filter(has_text="Bob Reyes")
    await expect(pair).to_contain_text("Robert Reyes")
    await look(browser, page, "duplicates")
    stale = await page.context.new_page()
    await stale.goto(page.url)

    # keep Robert's account
    # USWDS draws the radio on its label (the input itself is off-screen)
    await pair.locator("label").filter(has_text="Robert Reyes").click()
    await expect(pair.get_by_role("radio", name=re.compile("Robert Reyes"))).to_be_checked()
    await pair.get_by_role("button", name="Merge", exact=True).click()
    await expect(page.get_by_text("The accounts are merged.")).to_be_visible()
    await expect(page.get_by_text("No possible duplicates are waiting.")).to_be_visible()
    merged = await stack.identity_pool.fetchrow(
        "SELECT status FROM customers WHERE id <> $1 AND last_name = 'Reyes'", robert)
    assert merged is not None and merged["status"] != "active"
    await look(browser, page, "duplicates-merged")

    # the page left open cannot decide the pair a second time
    await stale.locator("section").filter(has_text="Bob Reyes").get_by_role(
        "button", name="Different people").click()
    await expect(stale.locator("#error-summary")).to_contain_text("already decided")
    await look(browser, stale, "duplicates-already-decided")

    # the merge undone: both accounts as they were
    await page.get_by_role("button", name="Undo this merge").click()
    await expect(page.get_by_text("The merge is undone.")).to_be_visible()
    statuses = {r["status"] for r in await stack.identity_pool.fetch(
        "SELECT status FROM customers WHERE last_name = 'Reyes'")}
    assert statuses == {"active"}
