"""The pages in Debian's Chromium against the real stack: sign-in, the console, Add
Customer end to end (form, match step, write-down), a validation error summary, the
customer's forced password change, signing in as someone else, sign-out; axe-core finds
no WCAG 2.1 A/AA violation on any page."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import Browser, GatewayStack, axe
from tests.integration.enrollment.conftest import STAFF_PASSWORD

SSN = "219-09-9999"
SSN_LABEL = "Social Security Number (Format: XXX-XX-XXXX)"
NEW_PASSWORD = "plum orchard lantern 2031"


async def look(browser: Browser, page: Page, name: str) -> None:
    """Screenshot, then axe: zero violations."""
    await browser.shot(page, name)
    violations = await axe(page)
    assert violations == [], f"{name}: {violations}"


async def sign_in(page: Page, url: str, username: str, password: str) -> None:
    await page.goto(f"{url}/signin")
    await page.get_by_label("Username", exact=True).fill(username)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def existing_customer(stack: GatewayStack, token: str) -> dict[str, Any]:
    """An account made earlier (not through Returning Citizens): the match step's candidate."""
    r = await stack.http.post(
        f"{stack.identity_url}/v1/customers", headers={"Authorization": f"Bearer {token}"},
        json={"first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12"})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_add_customer_from_sign_in_to_write_down_then_the_customer_signs_in(
    gateway_stack: GatewayStack, browser: Browser,
) -> None:
    stack = gateway_stack
    staff = await stack.reentry_worker("rcase")
    earlier = await existing_customer(stack, staff.token)
    page = await browser.page()

    # sign-in: the seed's labels and button
    await page.goto(stack.url)
    await expect(page).to_have_url(re.compile(r"/signin$"))
    await look(browser, page, "signin")
    await sign_in(page, stack.url, "rcase", STAFF_PASSWORD)
    await expect(page).to_have_url(re.compile(r"/console$"))
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Robin Case (rcase)")
    # groups is not on this stack: the home page says so and still offers Returning Citizens
    await expect(page.get_by_text("Your groups cannot be shown right now")).to_be_visible()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "csc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["secure"]
    await look(browser, page, "console-home")

    # Returning Citizens, by its navigation link; the list is empty
    await page.get_by_role("link", name="Returning Citizens", exact=True).first.click()
    await expect(page.get_by_role("heading", name="Returning Citizens")).to_be_visible()
    await look(browser, page, "customer-list-empty")
    await page.get_by_role("link", name="Add Customer").click()
    await expect(page.get_by_role("heading", name="Add Customer")).to_be_visible()
    search = page.get_by_role("link", name=re.compile("IDOC offender search"))
    await expect(search).to_have_attribute("href", re.compile(r"illinois\.gov/idoc/Offender"))
    await look(browser, page, "add-customer-form")

    # a form sent with mistakes: the error summary lists each, linked to its field
    await page.get_by_label("IDOC Number", exact=True).fill("R12345")
    await page.get_by_label("Confirm IDOC Number", exact=True).fill("R12346")
    await page.get_by_label(SSN_LABEL, exact=True).nth(0).fill(SSN)
    await page.get_by_role("button", name="Add Customer").click()
    summary = page.locator("#error-summary")
    await expect(summary).to_be_visible()
    await expect(summary).to_be_focused()
    await expect(summary.get_by_role("link", name=re.compile("^Confirm IDOC Number"))
                 ).to_be_visible()
    await expect(summary.get_by_role("link", name=re.compile("^First Name"))).to_be_visible()
    assert SSN not in await page.content()  # never shown again after submission
    await look(browser, page, "add-customer-errors")
    await summary.get_by_role("link", name=re.compile("^First Name")).click()
    await expect(page.get_by_label("First Name", exact=True)).to_be_focused()

    # the whole form, as the seed has it
    await page.get_by_label("Parent Institution", exact=True).select_option("kewanee-lsrc")
    await page.get_by_label("IDOC Number", exact=True).fill("R12345")
    await page.get_by_label("Confirm IDOC Number", exact=True).fill("r12345")
    await page.get_by_label("First Name", exact=True).fill("Marcus")
    await page.get_by_label("Last Name", exact=True).fill("O'Neil")
    ssn_fields = page.get_by_label(SSN_LABEL, exact=True)
    await expect(ssn_fields).to_have_count(2)
    await ssn_fields.nth(0).fill(SSN)
    await ssn_fields.nth(1).fill(SSN)
    await page.get_by_label("Date of Birth", exact=True).fill("1988-04-12")
    await page.get_by_label("County of Commitment", exact=True).select_option(["cook", "will"])
    await page.get_by_label("Mandatory Supervised Release Date", exact=True).fill("2026-01-15")
    await page.get_by_label("County of MSR", exact=True).select_option("cook")
    await page.get_by_label("Offenses", exact=True).select_option(["burglary"])
    await page.get_by_label("Enrollment Date", exact=True).fill("2025-11-03")
    await page.get_by_role("button", name="Add Customer").click()

    # the match step: the earlier account with its evidence
    await expect(page.get_by_role("heading", name="Is this the person?")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=earlier["username"])).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("^This is the person"))
                 ).to_be_visible()
    html = await page.content()
    assert SSN not in html and "219099999" not in html
    assert "ssn" not in page.url.lower()
    await look(browser, page, "match-step")
    await page.get_by_role("button", name="None of these: create a new account").click()

    # the write-down page
    await expect(page.get_by_role("heading", name="Account made")).to_be_visible()
    username = (await page.get_by_test_id("username").inner_text()).strip()
    password = (await page.get_by_test_id("temporary-password").inner_text()).strip()
    assert username and password and username != earlier["username"]
    assert SSN not in await page.content()
    await look(browser, page, "write-down")
    leftover = await stack.gateway_pool.fetchval("SELECT count(*) FROM intakes")
    assert leftover == 0

    # the customer list now shows the new customer; the customer page offers password help
    await page.goto(f"{stack.url}/console/returning-citizens?q=R12345")
    row = page.get_by_role("row").filter(has_text="R12345")
    await expect(row).to_contain_text(username)
    await look(browser, page, "customer-list")
    await row.get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Password help")).to_be_visible()
    await look(browser, page, "customer-page")

    # the customer, in another browser: the temporary password leads to the change page only
    customer = await browser.page()
    await sign_in(customer, stack.url, username, password)
    await expect(customer).to_have_url(re.compile(r"/account/password$"))
    await expect(customer.get_by_test_id("signed-in-as")).to_contain_text(username)
    await look(browser, customer, "forced-password-change")
    for elsewhere in ("/me", "/console", "/console/returning-citizens", "/"):
        await customer.goto(stack.url + elsewhere)
        await expect(customer).to_have_url(re.compile(r"/account/password$"))
    await customer.get_by_label("Current password", exact=True).fill(password)
    await customer.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await customer.get_by_label("Confirm new password", exact=True).fill(NEW_PASSWORD + "x")
    await customer.get_by_role("button", name="Change password").click()
    await expect(customer.locator("#error-summary")).to_contain_text("not the same")
    await look(browser, customer, "password-change-error")
    await customer.get_by_label("Current password", exact=True).fill(password)
    await customer.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await customer.get_by_label("Confirm new password", exact=True).fill(NEW_PASSWORD)
    await customer.get_by_role("button", name="Change password").click()
    await expect(customer).to_have_url(re.compile(r"/me\?changed=1$"))
    await expect(customer.get_by_text("Your password is changed.")).to_be_visible()
    await look(browser, customer, "customer-home")

    # sign-out ends the page session and identity's session behind it
    refresh_rows = await stack.gateway_pool.fetch(
        "SELECT id FROM sessions WHERE username = $1 AND ended_at IS NULL", username)
    assert len(refresh_rows) == 1
    await customer.get_by_role("button", name="Sign out").click()
    await expect(customer.get_by_text("You are signed out.")).to_be_visible()
    await look(browser, customer, "signed-out")
    await customer.goto(f"{stack.url}/me")
    await expect(customer).to_have_url(re.compile(r"/signin$"))
    revoked = await stack.identity_pool.fetchval(
        "SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND account_id = $1::uuid",
        (await stack.gateway_pool.fetchval(
            "SELECT account_id FROM sessions WHERE id = $1", refresh_rows[0]["id"])))
    assert revoked == 0
    # ... as a sign-out that every service hears of (not a reused refresh token)
    events = await stack.identity_pool.fetch(
        "SELECT convert_from(value, 'UTF8') AS v FROM outbox"
        " WHERE event_type LIKE '%SessionRevoked%'")
    assert any('"reason":"sign_out"' in e["v"].replace(" ", "") for e in events), events


async def test_signing_in_as_someone_else_signs_the_first_person_out_with_a_notice(
    gateway_stack: GatewayStack, browser: Browser,
) -> None:
    stack = gateway_stack
    await stack.new_staff("first", "reentry", first="Fay", last="First")
    await stack.new_staff("second", "reentry", first="Sam", last="Second")
    page = await browser.page()
    await sign_in(page, stack.url, "first", STAFF_PASSWORD)
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Fay First")
    await page.goto(f"{stack.url}/signin")
    await expect(page.get_by_text("Signing in as someone else here signs")).to_be_visible()
    await look(browser, page, "signin-while-signed-in")
    await page.get_by_label("Username", exact=True).fill("second")
    await page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_text("Fay First (first) was signed out first.")).to_be_visible()
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Sam Second")
    open_sessions = await stack.gateway_pool.fetchval(
        "SELECT count(*) FROM sessions WHERE ended_at IS NULL")
    assert open_sessions == 1
    # a wrong password: the summary says so, linked to the field
    await page.goto(f"{stack.url}/signin")
    await page.get_by_label("Username", exact=True).fill("second")
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#error-summary")).to_contain_text("not right")
    await look(browser, page, "signin-error")


async def test_admin_pages_registration_and_recovery(
    gateway_stack: GatewayStack, browser: Browser,
) -> None:
    stack = gateway_stack
    await stack.new_staff("ada", "admin", "reentry", first="Ada", last="Min")
    worker = await stack.new_staff("wes", "reentry", first="Wes", last="Worker")
    page = await browser.page()
    await sign_in(page, stack.url, "ada", STAFF_PASSWORD)
    await page.get_by_role("link", name="Possible duplicates").click()
    await expect(page.get_by_text("No possible duplicates are waiting.")).to_be_visible()
    await look(browser, page, "duplicates")

    # program authorization: a bad ID is shown in the summary; a good one is listed
    await page.get_by_role("link", name="Program authorization").click()
    await page.get_by_label("Program", exact=True).select_option("returning-citizens")
    await expect(page.get_by_role("heading", name="Authorize a staff member")).to_be_visible()
    await page.get_by_label("Staff account ID", exact=True).fill("wes")
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.locator("#error-summary")).to_contain_text("must be an account ID")
    await look(browser, page, "programs-error")
    await page.get_by_label("Staff account ID", exact=True).fill(str(worker.id))
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.get_by_text("The staff member is authorized.")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="wes")).to_be_visible()
    await look(browser, page, "programs")
    # staff without the admin role do not get the page
    other = await browser.page()
    await sign_in(other, stack.url, "wes", STAFF_PASSWORD)
    await expect(other.get_by_role("link", name="Program authorization")).to_have_count(0)
    await other.goto(f"{stack.url}/console/programs")
    await expect(other).to_have_url(re.compile(r"/console$"))

    # a person registers and is signed in; recovery answers the same for any address
    person = await browser.page()
    await person.goto(f"{stack.url}/signin")
    await person.get_by_role("link", name="Create an account").click()
    await look(browser, person, "register")
    await person.get_by_label("First Name", exact=True).fill("Tanya")
    await person.get_by_label("Last Name", exact=True).fill("Brooks")
    await person.get_by_label("Date of Birth", exact=True).fill("1990-02-03")
    await person.get_by_label("Username", exact=True).fill("tbrooks90")
    await person.get_by_label("Password", exact=True).fill("short")
    await person.get_by_role("button", name="Create account").click()
    await expect(person.locator("#error-summary")).to_contain_text("Password")
    await look(browser, person, "register-error")
    await person.get_by_label("Password", exact=True).fill("violet harbor kettle 1977")
    await person.get_by_role("button", name="Create account").click()
    await expect(person).to_have_url(re.compile(r"/me$"))
    await expect(person.get_by_test_id("signed-in-as")).to_contain_text("tbrooks90")
    await person.get_by_role("button", name="Sign out").click()
    # the same person again under another name: identity makes no second account (it
    # holds the attempt for staff, answering as it does for a new one); the page says
    # where to turn, not whether an account exists
    await person.goto(f"{stack.url}/register")
    await person.get_by_label("First Name", exact=True).fill("Tanya")
    await person.get_by_label("Last Name", exact=True).fill("Brooks")
    await person.get_by_label("Date of Birth", exact=True).fill("1990-02-03")
    await person.get_by_label("Username", exact=True).fill("tanya.b")
    await person.get_by_label("Password", exact=True).fill("violet harbor kettle 1977")
    await person.get_by_role("button", name="Create account").click()
    await expect(person.get_by_text("see staff at your local office")).to_be_visible()
    await look(browser, person, "register-held")
    await person.goto(f"{stack.url}/signin")
    await person.get_by_role("link", name="Forgot your password?").click()
    await person.get_by_label("Email address", exact=True).fill("nobody@example.com")
    await person.get_by_role("button", name="Send the link").click()
    await expect(person.get_by_text("If that email address belongs to an account")
                 ).to_be_visible()
    await look(browser, person, "recover")


async def test_every_service_answers_behind_the_gateway(full_stack: Any) -> None:
    """The full stack the group and customer pages sit on: each service reachable
    through the gateway's /api/<name>/ (a down one would answer 503 naming it)."""
    for name in ("identity", "enrollment", "groups", "notify", "readiness", "sync-iwds"):
        r = await full_stack.http.get(f"{full_stack.url}/api/{name}/healthz")
        assert r.status_code == 200, (name, r.status_code, r.text)
