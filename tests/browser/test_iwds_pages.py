"""The IWDS run reports in Debian's Chromium against every service behind the gateway:
two participants extracts imported through sync-iwds' CLI use case (the second would
remove half the records, so it is held), an admin reads the runs and a run's rejected
rows, confirms the held run (a stale page then cannot decide it again); staff without
the admin role do not get the pages; axe-core finds no WCAG 2.1 A/AA violation."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.async_api import expect

from sync_iwds import service as iwds
from sync_iwds.deps import build_deps
from sync_iwds.settings import SyncIwdsSettings
from tests.browser.conftest import Browser, FullStack
from tests.browser.test_pages import look, sign_in
from tests.integration.enrollment.conftest import STAFF_PASSWORD

HEADER = ("iwds_person_id,worknet_account_id,lwia_code,office_code,case_manager_staff_id,"
          "first_name,last_name,date_of_birth,program,status,exit_date,updated_at")


def extract(path: Path, people: range, *, bad_row: bool = False) -> Path:
    lines = [HEADER] + [
        f"IW{n:08d},,07,07-02,CM00017,Pat{n},Lee,1980-01-{1 + n % 28:02d},WIOA-AD,active,,"
        "2026-11-01T02:00:00Z" for n in people]
    if bad_row:
        lines.append("IW99999999,,99,,,Bad,Row,1980-01-01,,active,,2026-11-01T02:00:00Z")
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_an_admin_reads_iwds_runs_and_confirms_a_held_one(
    full_stack: FullStack, browser: Browser, tmp_path: Path,
) -> None:
    stack = full_stack
    await stack.new_staff("ada", "admin", first="Ada", last="Min")
    await stack.new_staff("wes", "reentry", first="Wes", last="Worker")
    assert stack.sync_iwds_pool is not None
    deps = await build_deps(SyncIwdsSettings())
    first = await iwds.import_file(stack.sync_iwds_pool, deps, feed="participants",
                                   mode="full", path=extract(tmp_path / "a.csv", range(1, 21),
                                                             bad_row=True))
    assert first.status == "done" and first.counts.rejected == 1
    second = await iwds.import_file(stack.sync_iwds_pool, deps, feed="participants",
                                    mode="full", path=extract(tmp_path / "b.csv",
                                                              range(1, 11)))
    assert second.status == "held" and second.counts.removed == 10

    page = await browser.page()
    await sign_in(page, stack.url, "ada", STAFF_PASSWORD)
    await page.get_by_role("link", name="IWDS runs", exact=True).click()
    await expect(page.get_by_role("heading", name="IWDS runs", exact=True)).to_be_visible()
    held = page.get_by_role("region", name=re.compile("1 held run waiting"))
    await expect(held).to_contain_text("would remove 10 of its records")
    rows = page.get_by_role("table").get_by_role("row")
    await expect(rows).to_have_count(3)  # the header and two runs, newest first
    await expect(rows.nth(1)).to_contain_text("Held")
    await expect(rows.nth(2)).to_contain_text("Done")
    await look(browser, page, "iwds-runs")

    # the first run: its counts and its rejected row (line and reason, not its content)
    await page.goto(f"{stack.url}/console/iwds/runs/{first.id}")
    await expect(page.get_by_test_id("run-status")).to_have_text("Done")
    counts = page.get_by_role("table").first
    await expect(counts.get_by_role("row").filter(has_text="Added")).to_contain_text("20")
    rejected = page.get_by_role("table").nth(1).get_by_role("row").nth(1)
    await expect(rejected).to_contain_text("IW99999999")
    await expect(rejected).to_contain_text("22")  # the header is line 1
    assert "Bad" not in await rejected.inner_text()
    await look(browser, page, "iwds-run-rejected")
    download = await page.context.request.get(
        f"{stack.url}/console/iwds/runs/{first.id}/rejected.csv")
    assert download.status == 200
    assert (await download.text()).startswith("line,iwds_id,reason\r\n22,IW99999999,")

    # the held run: confirm it; a page opened before cannot decide it a second time
    await page.goto(f"{stack.url}/console/iwds")
    await held.get_by_role("link").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("Held")
    await expect(page.get_by_role("row").filter(has_text="Would be removed")
                 ).to_contain_text("10")
    await look(browser, page, "iwds-run-held")
    stale = await page.context.new_page()
    await stale.goto(page.url)
    await page.get_by_role("button", name="Confirm and apply the run").click()
    await expect(page.get_by_text("The run is confirmed and applied.")).to_be_visible()
    await expect(page.get_by_test_id("run-status")).to_have_text("Done")
    await expect(page.get_by_role("button", name="Confirm and apply the run")).to_have_count(0)
    await look(browser, page, "iwds-run-confirmed")
    assert await stack.sync_iwds_pool.fetchval(
        "SELECT status FROM iwds_runs WHERE id = $1", second.id) == "done"
    await stale.get_by_role("button", name="Discard the run").click()
    await expect(stale.locator("#error-summary")).to_contain_text("no longer held")
    await expect(stale.get_by_test_id("run-status")).to_have_text("Done")
    await look(browser, stale, "iwds-run-already-decided")

    # an address that names no run
    response = await page.goto(f"{stack.url}/console/iwds/runs/{uuid.uuid4()}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="No such run")).to_be_visible()
    response = await page.goto(f"{stack.url}/console/iwds/runs/not-a-run")
    assert response is not None and response.status == 404

    # staff without the admin role: no link, and the pages send them home
    other = await browser.page()
    await sign_in(other, stack.url, "wes", STAFF_PASSWORD)
    await expect(other.get_by_role("link", name="IWDS runs")).to_have_count(0)
    for path in ("/console/iwds", f"/console/iwds/runs/{first.id}",
                 f"/console/iwds/runs/{first.id}/rejected.csv"):
        await other.goto(stack.url + path)
        await expect(other).to_have_url(re.compile(r"/console$"))
